# A strict parser of the Prometheus text exposition format 0.0.4, for checking what /metrics serves.
"""parse(text) -> {family name: Family}; raises FormatError on anything the format doesn't allow.

Checked: line grammar (HELP/TYPE comments, samples), metric and label name grammar, label value
escaping (only \\\\, \\" and \\n), float values (Nan, +Inf, -Inf included), optional integer
timestamps, at most one HELP and one TYPE per family and before its samples, a family's samples
in one group, no duplicate series, sample names that fit the TYPE (counter/gauge/untyped: the
family name; histogram: _bucket/_sum/_count; summary: quantiles/_sum/_count), and for each
histogram series: an le="+Inf" bucket, buckets non-decreasing in count as le grows, and
_count equal to the +Inf bucket. Counters must not be negative.
"""

import http.client
import math
import re
from dataclasses import dataclass, field

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class FormatError(ValueError):
    pass


@dataclass
class Sample:
    name: str
    labels: dict
    value: float


@dataclass
class Family:
    name: str
    type: str = "untyped"
    help: str | None = None
    typed: bool = False      # a TYPE line was seen
    samples: list = field(default_factory=list)

    def value(self, sample_name=None, **labels):
        """The value of the sample with exactly these labels (and name), or None."""
        wanted = sample_name or self.name
        for sample in self.samples:
            if sample.name == wanted and sample.labels == labels:
                return sample.value
        return None

    def total(self, sample_name=None, **labels):
        """Sum over the samples whose labels include these."""
        wanted = sample_name or self.name
        return sum(s.value for s in self.samples
                   if s.name == wanted and all(s.labels.get(k) == v for k, v in labels.items()))


def _parse_float(text, where):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN" or text == "Nan":
        return math.nan
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        raise FormatError(f"{where}: not a number: {text!r}")
    return float(text)


def _parse_labels(text, pos, where):
    """text[pos] is '{'; returns (labels, position after '}')."""
    labels = {}
    pos += 1
    while True:
        if pos < len(text) and text[pos] == "}":
            return labels, pos + 1
        match = LABEL_NAME.match(text, pos)
        if not match:
            raise FormatError(f"{where}: bad label name at column {pos + 1}")
        name = match.group(0)
        pos = match.end()
        if text[pos:pos + 2] != '="':
            raise FormatError(f"{where}: expected =\" after label {name}")
        pos += 2
        value = []
        while True:
            if pos >= len(text):
                raise FormatError(f"{where}: unterminated value of label {name}")
            c = text[pos]
            if c == "\\":
                escaped = text[pos + 1:pos + 2]
                if escaped not in ("\\", '"', "n"):
                    raise FormatError(f"{where}: bad escape \\{escaped} in label {name}")
                value.append("\n" if escaped == "n" else escaped)
                pos += 2
            elif c == '"':
                pos += 1
                break
            else:
                value.append(c)
                pos += 1
        if name in labels:
            raise FormatError(f"{where}: label {name} twice")
        if name.startswith("__"):
            raise FormatError(f"{where}: label names starting with __ are reserved: {name}")
        labels[name] = "".join(value)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos >= len(text) or text[pos] != "}":
            raise FormatError(f"{where}: expected , or }} after label {name}")


def _family_of(sample_name, families):
    """The declared family a sample belongs to (histogram/summary suffixes), else its own name."""
    for suffix in ("_bucket", "_sum", "_count"):
        if sample_name.endswith(suffix):
            base = sample_name[:-len(suffix)]
            if base in families and families[base].type in ("histogram", "summary"):
                return base
    return sample_name


def parse(text):
    if text and not text.endswith("\n"):
        raise FormatError("the exposition must end with a newline")
    families = {}
    finished = set()      # families whose sample group has ended
    current = None        # family of the last sample
    series = set()
    for number, line in enumerate(text.split("\n")[:-1] if text else [], start=1):
        where = f"line {number}"
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[0] == "#" and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not METRIC_NAME.fullmatch(name):
                    raise FormatError(f"{where}: bad metric name {name!r}")
                family = families.setdefault(name, Family(name))
                if family.samples:
                    raise FormatError(f"{where}: {parts[1]} for {name} after its samples")
                if parts[1] == "HELP":
                    if family.help is not None:
                        raise FormatError(f"{where}: second HELP for {name}")
                    help_text = parts[3] if len(parts) > 3 else ""
                    if re.search(r"\\[^\\n]", help_text.replace("\\\\", "")):
                        raise FormatError(f"{where}: bad escape in HELP of {name}")
                    family.help = help_text
                else:
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise FormatError(f"{where}: bad TYPE line")
                    if family.typed:
                        raise FormatError(f"{where}: second TYPE for {name}")
                    family.type = parts[3]
                    family.typed = True
            continue   # other comments are allowed
        match = METRIC_NAME.match(line)
        if not match:
            raise FormatError(f"{where}: bad metric name")
        name = match.group(0)
        pos = match.end()
        labels = {}
        if pos < len(line) and line[pos] == "{":
            labels, pos = _parse_labels(line, pos, where)
        if pos >= len(line) or line[pos] != " ":
            raise FormatError(f"{where}: expected a space before the value")
        fields = line[pos + 1:].split(" ")
        if len(fields) not in (1, 2) or "" in fields:
            raise FormatError(f"{where}: expected VALUE [TIMESTAMP]")
        value = _parse_float(fields[0], where)
        if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
            raise FormatError(f"{where}: bad timestamp {fields[1]!r}")
        family_name = _family_of(name, families)
        family = families.setdefault(family_name, Family(family_name))
        if family_name != current:
            if family_name in finished:
                raise FormatError(f"{where}: samples of {family_name} are not in one group")
            if current is not None:
                finished.add(current)
            current = family_name
        allowed = {"histogram": {family_name + "_bucket", family_name + "_sum", family_name + "_count"},
                   "summary": {family_name, family_name + "_sum", family_name + "_count"}}.get(
                       family.type, {family_name})
        if name not in allowed:
            raise FormatError(f"{where}: sample {name} doesn't fit the {family.type} {family_name}")
        if family.type == "histogram" and name.endswith("_bucket"):
            if "le" not in labels:
                raise FormatError(f"{where}: histogram bucket without le")
            _parse_float(labels["le"], where)
        if family.type == "summary" and name == family_name and "quantile" not in labels:
            raise FormatError(f"{where}: summary sample without quantile")
        if family.type == "counter" and not value >= 0:
            raise FormatError(f"{where}: counter {name} is {value}")
        key = (name, tuple(sorted(labels.items())))
        if key in series:
            raise FormatError(f"{where}: duplicate series {name}{labels}")
        series.add(key)
        family.samples.append(Sample(name, labels, value))
    for family in families.values():
        if family.type == "histogram":
            _check_histogram(family)
    return families


def _check_histogram(family):
    groups = {}
    for sample in family.samples:
        base = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
        groups.setdefault(base, {"buckets": [], "sum": None, "count": None})
        group = groups[base]
        if sample.name.endswith("_bucket"):
            group["buckets"].append((float(_parse_float(sample.labels["le"], family.name)), sample.value))
        elif sample.name.endswith("_sum"):
            group["sum"] = sample.value
        else:
            group["count"] = sample.value
    for labels, group in groups.items():
        what = f"histogram {family.name}{dict(labels)}"
        buckets = sorted(group["buckets"])
        if not buckets or buckets[-1][0] != math.inf:
            raise FormatError(f"{what}: no le=\"+Inf\" bucket")
        if group["count"] is None or group["sum"] is None:
            raise FormatError(f"{what}: _count or _sum missing")
        for (_, lower), (bound, higher) in zip(buckets, buckets[1:]):
            if higher < lower:
                raise FormatError(f"{what}: bucket le={bound} has fewer observations than the one before")
        if buckets[-1][1] != group["count"]:
            raise FormatError(f"{what}: _count {group['count']} differs from the +Inf bucket {buckets[-1][1]}")


def scrape(address, timeout=10.0):
    """GET /metrics from (host, port) and parse it."""
    connection = http.client.HTTPConnection(address[0], address[1], timeout=timeout)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        body = response.read().decode("utf-8")
        if response.status != 200:
            raise AssertionError(f"/metrics answered {response.status}")
        content_type = response.getheader("Content-Type") or ""
        if not content_type.startswith("text/plain"):
            raise AssertionError(f"/metrics Content-Type is {content_type!r}")
        return parse(body)
    finally:
        connection.close()
