package redisstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
)

// tlsParams are the URL parameters fsmc reads for TLS, beyond what
// go-redis reads from a rediss:// URL:
//
//	tls_ca=PATH                 PEM certificates to trust instead of the system's
//	tls_cert=PATH&tls_key=PATH  a client certificate and its key, for a
//	                            server that asks for one (tls-auth-clients)
var tlsParams = []string{"tls_ca", "tls_cert", "tls_key"}

// takeTLSParams removes tlsParams from raw (go-redis refuses options it
// does not know) and returns the URL left and a function that applies
// them to the client's TLS configuration; apply is nil when raw has none.
func takeTLSParams(raw string) (rest string, apply func(*tls.Config) error, err error) {
	u, err := neturl.Parse(raw)
	if err != nil {
		return raw, nil, nil // go-redis says what is wrong with it
	}
	q := u.Query()
	ca, cert, key := q.Get("tls_ca"), q.Get("tls_cert"), q.Get("tls_key")
	if ca == "" && cert == "" && key == "" {
		return raw, nil, nil
	}
	if (cert == "") != (key == "") {
		return "", nil, errors.New("tls_cert and tls_key go together")
	}
	for _, p := range tlsParams {
		q.Del(p)
	}
	u.RawQuery = q.Encode()
	apply = func(cfg *tls.Config) error {
		if cfg == nil {
			return errors.New("tls_ca, tls_cert and tls_key need a rediss:// URL")
		}
		if ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return fmt.Errorf("tls_ca: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("tls_ca: no PEM certificates in %s", ca)
			}
			cfg.RootCAs = pool
		}
		if cert != "" {
			pair, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				return fmt.Errorf("tls_cert and tls_key: %v", err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		return nil
	}
	return u.String(), apply, nil
}

// parseWithTLS parses raw with parse (go-redis's, for one node or a
// Cluster) once fsmc's TLS parameters are taken out, and applies those
// to the TLS configuration that parse made (tlsOf).
func parseWithTLS[T any](raw string, parse func(string) (T, error), tlsOf func(T) *tls.Config) (T, error) {
	rest, applyTLS, err := takeTLSParams(raw)
	if err != nil {
		var zero T
		return zero, err
	}
	o, err := parse(rest)
	if err == nil && applyTLS != nil {
		err = applyTLS(tlsOf(o))
	}
	return o, err
}
