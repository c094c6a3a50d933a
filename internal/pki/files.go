package pki

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The files of a farm's credentials are named after the farm and the node,
// so that the credentials of several farms and nodes can share a directory:
//
//	usher-<farm>-ca.pem, usher-<farm>-ca-key.pem     the CA
//	usher-<farm>-<node>.pem, usher-<farm>-<node>-key.pem   a node

// CABase is the path, without ".pem", of farm's CA certificate in dir; its
// key is CABase + "-key.pem".
func CABase(dir, farm string) string {
	return filepath.Join(dir, "usher-"+farm+"-ca")
}

// NodeBase is the path, without ".pem", of node's certificate of farm in
// dir; its key is NodeBase + "-key.pem". Characters of the node name that
// cannot be in a file name become '_'.
func NodeBase(dir, farm, node string) string {
	return filepath.Join(dir, "usher-"+farm+"-"+fileSafe(node))
}

// FindCA returns the CA certificate file of dir: the one file
// usher-*-ca.pem there.
func FindCA(dir string) (string, error) {
	found, _ := filepath.Glob(filepath.Join(dir, "usher-*-ca.pem"))
	if len(found) != 1 {
		return "", fmt.Errorf("%d files usher-*-ca.pem in %s", len(found), dir)
	}
	return found[0], nil
}

// CAKeyFile returns the file of the key of the CA certificate file
// certFile, named as CABase names it: certFile with -key before .pem.
func CAKeyFile(certFile string) string {
	return strings.TrimSuffix(certFile, ".pem") + "-key.pem"
}

// ReadCA reads a CA from its certificate and key files.
func ReadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	ca, err := ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s and %s: %w", certFile, keyFile, err)
	}
	return ca, nil
}

// fileSafe maps a node name to a file name part.
func fileSafe(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, name)
}

// File is one file for WriteNew to create.
type File struct {
	Path string
	Data []byte
	Mode os.FileMode
}

// WriteNew creates each file with its mode. It refuses, before writing
// any, when one of them exists, and never overwrites a file: credentials
// replaced by mistake cannot be had back. A file that fails half-written
// is removed. A symbolic link at a path counts as existing (Lstat, and
// O_EXCL refuses it too), so a planted link cannot redirect a key.
// saved, when not nil, is called with each path written.
func WriteNew(files []File, saved func(path string)) error {
	for _, f := range files {
		if _, err := os.Lstat(f.Path); err == nil {
			return fmt.Errorf("%s already exists: not overwritten", f.Path)
		}
	}
	for _, f := range files {
		w, err := os.OpenFile(f.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.Mode)
		if err != nil {
			return err
		}
		_, err = w.Write(f.Data)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return errors.Join(err, os.Remove(f.Path))
		}
		if saved != nil {
			saved(f.Path)
		}
	}
	return nil
}
