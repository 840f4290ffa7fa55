// Test-fixture generator: the SCEP messages scepserver never sends (CertRep PENDING) and scepclient never sends (CertPoll), built with micromdm/scep's own stack.
//
// Usage (from make_fixtures.sh, see README.md):
//
//	go run main.go -depot DIR -request PKCSREQ.der -device-key KEY.pem -pending OUT.der -certpoll OUT.der
//
// It answers a real scepclient PKCSReq the way a CA that holds the request for manual approval
// would: a CertRep with pkiStatus PENDING, signed with scepserver's CA key from its depot. It
// also writes the CertPoll (GetCertInitial) a polling client sends for that transaction, signed
// like the PKCSReq with scepclient's own key and "SCEP SIGNER" certificate. It prints
// key=value facts for fixtures.expect, read back with micromdm's parser (not the code under test).
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"

	filedepot "github.com/micromdm/scep/v2/depot/file"
	"github.com/micromdm/scep/v2/scep"
	"go.mozilla.org/pkcs7"
)

// The SCEP attribute OIDs (RFC 8894 section 3.2.1); micromdm/scep keeps its copies unexported.
var (
	oidMessageType    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 2}
	oidPKIStatus      = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 3}
	oidSenderNonce    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 5}
	oidRecipientNonce = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 6}
	oidTransactionID  = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 7}
)

// IssuerAndSubject is the CertPoll content (RFC 8894 section 3.3.3).
type issuerAndSubject struct {
	Issuer  asn1.RawValue
	Subject asn1.RawValue
}

func main() {
	depotDir := flag.String("depot", "", "scepserver depot holding ca.pem and ca.key (empty password)")
	requestPath := flag.String("request", "", "DER PKCSReq captured from scepclient")
	deviceKeyPath := flag.String("device-key", "", "scepclient's private key (PEM) that signed the PKCSReq")
	pendingPath := flag.String("pending", "", "where to write the CertRep PENDING (DER)")
	certPollPath := flag.String("certpoll", "", "where to write the CertPoll (DER)")
	flag.Parse()
	if *depotDir == "" || *requestPath == "" || *deviceKeyPath == "" || *pendingPath == "" || *certPollPath == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*depotDir, *requestPath, *deviceKeyPath, *pendingPath, *certPollPath); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

func run(depotDir, requestPath, deviceKeyPath, pendingPath, certPollPath string) error {
	depot, err := filedepot.NewFileDepot(depotDir)
	if err != nil {
		return err
	}
	caCerts, caKey, err := depot.CA([]byte(""))
	if err != nil {
		return fmt.Errorf("load CA: %w", err)
	}
	caCert := caCerts[0]

	// Read the request as scepserver does: verify, read the attributes, decrypt the CSR.
	requestDER, err := os.ReadFile(requestPath)
	if err != nil {
		return err
	}
	request, err := scep.ParsePKIMessage(requestDER)
	if err != nil {
		return fmt.Errorf("parse PKCSReq: %w", err)
	}
	if request.MessageType != scep.PKCSReq {
		return fmt.Errorf("request is %s, not a PKCSReq", request.MessageType)
	}
	if err := request.DecryptPKIEnvelope(caCert, caKey); err != nil {
		return fmt.Errorf("decrypt PKCSReq: %w", err)
	}

	pendingDER, serverNonce, err := certRepPending(request, caCert, caKey)
	if err != nil {
		return err
	}
	// micromdm's parser must read it back as a PENDING answer to this very request.
	pending, err := scep.ParsePKIMessage(pendingDER)
	if err != nil {
		return fmt.Errorf("parse own CertRep PENDING: %w", err)
	}
	if pending.MessageType != scep.CertRep || pending.PKIStatus != scep.PENDING ||
		pending.TransactionID != request.TransactionID ||
		hex.EncodeToString(pending.RecipientNonce) != hex.EncodeToString(request.SenderNonce) {
		return errors.New("CertRep PENDING does not read back as written")
	}

	certPollDER, pollNonce, err := certPoll(request, requestDER, caCert, deviceKeyPath)
	if err != nil {
		return err
	}
	if err := os.WriteFile(pendingPath, pendingDER, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(certPollPath, certPollDER, 0o644); err != nil {
		return err
	}

	fmt.Printf("pending_transaction_id=%s\n", request.TransactionID)
	fmt.Printf("pending_request_sender_nonce=%s\n", hex.EncodeToString(request.SenderNonce))
	fmt.Printf("pending_sender_nonce=%s\n", hex.EncodeToString(serverNonce))
	fmt.Printf("certpoll_sender_nonce=%s\n", hex.EncodeToString(pollNonce))
	fmt.Printf("pending_csr_subject_cn=%s\n", request.CSRReqMessage.CSR.Subject.CommonName)
	return nil
}

// certRepPending builds the CertRep PENDING the way scep.PKIMessage.Fail builds a FAILURE
// (degenerate SignedData, no pkcsPKIEnvelope, signed by the CA), with pkiStatus PENDING and
// no failInfo. Unlike Fail, whose senderNonce repeats the client's, the senderNonce is fresh,
// as RFC 8894 section 3.2.1.5 asks of the server; the recipientNonce echoes the client's.
func certRepPending(request *scep.PKIMessage, caCert *x509.Certificate, caKey *rsa.PrivateKey) ([]byte, []byte, error) {
	serverNonce, err := newNonce()
	if err != nil {
		return nil, nil, err
	}
	config := pkcs7.SignerInfoConfig{
		ExtraSignedAttributes: []pkcs7.Attribute{
			{Type: oidTransactionID, Value: request.TransactionID},
			{Type: oidPKIStatus, Value: scep.PENDING},
			{Type: oidMessageType, Value: scep.CertRep},
			{Type: oidSenderNonce, Value: serverNonce},
			{Type: oidRecipientNonce, Value: []byte(request.SenderNonce)},
		},
	}
	der, err := signedMessage(nil, caCert, caKey, config)
	return der, serverNonce, err
}

// certPoll builds the CertPoll for the request's transaction: IssuerAndSubject (the CA's name,
// the CSR's subject) enveloped for the CA as scep.NewCSRRequest envelopes a CSR, signed with
// the PKCSReq's own signer certificate and key, a fresh senderNonce, the same transactionID.
func certPoll(request *scep.PKIMessage, requestDER []byte, caCert *x509.Certificate, deviceKeyPath string) ([]byte, []byte, error) {
	outer, err := pkcs7.Parse(requestDER)
	if err != nil || len(outer.Certificates) != 1 {
		return nil, nil, fmt.Errorf("PKCSReq signer certificate: %v", err)
	}
	signerCert := outer.Certificates[0]
	deviceKey, err := loadRSAKey(deviceKeyPath)
	if err != nil {
		return nil, nil, err
	}
	if !deviceKey.PublicKey.Equal(signerCert.PublicKey) {
		return nil, nil, errors.New("device key does not match the PKCSReq signer certificate")
	}
	content, err := asn1.Marshal(issuerAndSubject{
		Issuer:  asn1.RawValue{FullBytes: caCert.RawSubject},
		Subject: asn1.RawValue{FullBytes: request.CSRReqMessage.CSR.RawSubject},
	})
	if err != nil {
		return nil, nil, err
	}
	envelope, err := pkcs7.Encrypt(content, []*x509.Certificate{caCert})
	if err != nil {
		return nil, nil, err
	}
	pollNonce, err := newNonce()
	if err != nil {
		return nil, nil, err
	}
	config := pkcs7.SignerInfoConfig{
		ExtraSignedAttributes: []pkcs7.Attribute{
			{Type: oidTransactionID, Value: request.TransactionID},
			{Type: oidMessageType, Value: scep.CertPoll},
			{Type: oidSenderNonce, Value: pollNonce},
		},
	}
	der, err := signedMessage(envelope, signerCert, deviceKey, config)
	return der, pollNonce, err
}

// signedMessage is the SignedData every pkiMessage is: content, one signer, its certificate.
func signedMessage(content []byte, cert *x509.Certificate, key *rsa.PrivateKey, config pkcs7.SignerInfoConfig) ([]byte, error) {
	signedData, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, err
	}
	if err := signedData.AddSigner(cert, key, config); err != nil {
		return nil, err
	}
	return signedData.Finish()
}

func newNonce() ([]byte, error) {
	nonce := make([]byte, 16)
	_, err := rand.Read(nonce)
	return nonce, err
}

// loadRSAKey reads scepclient's key file (PKCS#1 "RSA PRIVATE KEY", or PKCS#8).
func loadRSAKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	if key, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return key, nil
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an RSA key", path)
	}
	return key, nil
}
