// Label enums (metric labels, error codes) declared from one list: the enum, its count and its names can't drift apart.
#pragma once

#include <array>
#include <cstddef>
#include <iterator>

// SCEPPROXY_LABEL_ENUM(Type, LIST), where LIST(X) calls X(name) once per enumerator, in order
// (Envoy's ALL_..._STATS lists). Declares, in the current namespace:
//   enum class Type { name, ... };
//   k<Type>Count                      how many there are: array sizes of per-label handles;
//   k<Type>Names                      {"name", ...}: the printed names, in enum order;
//   const char* to_string(Type)       "name"; "unknown" for a value outside the list.
// Comments beside the X(name) lines must be /* */: a // would swallow the line continuation.
#define SCEPPROXY_LABEL_ENUM_VALUE(name) name,
#define SCEPPROXY_LABEL_ENUM_NAME(name) #name,
#define SCEPPROXY_LABEL_ENUM(Type, LIST)                                               \
    enum class Type { LIST(SCEPPROXY_LABEL_ENUM_VALUE) };                              \
    inline constexpr const char* k##Type##Names[] = {LIST(SCEPPROXY_LABEL_ENUM_NAME)}; \
    inline constexpr size_t k##Type##Count = std::size(k##Type##Names);                \
    constexpr const char* to_string(Type value) {                                      \
        const auto index = static_cast<size_t>(value);                                 \
        return index < k##Type##Count ? k##Type##Names[index] : "unknown";             \
    }

namespace scepproxy {

// Every value of a label enum, in enum order: a metrics layer resolves all handles at start-up.
template <class Enum, size_t Count>
constexpr std::array<Enum, Count> label_enum_values() {
    std::array<Enum, Count> values{};
    for (size_t i = 0; i < Count; ++i) values[i] = static_cast<Enum>(i);
    return values;
}

}  // namespace scepproxy
