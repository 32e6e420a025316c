// Command releasesshkey prints harmony's release key in OpenSSH's encodings (see package sshkey).
// scripts/release and scripts/test run it:
//
//	go run ./internal/sshkey/releasesshkey private MINISIGN_SECRET_KEY_FILE  > key (mode 0600)
//	go run ./internal/sshkey/releasesshkey public MINISIGN_PUBLIC_KEY        (base64 line)
//	go run ./internal/sshkey/releasesshkey allowed-signers MINISIGN_PUBLIC_KEY
package main

import (
	"fmt"
	"os"

	"github.com/NationTech/harmony-agent/internal/sshkey"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "releasesshkey: error:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: releasesshkey private MINISIGN_SECRET_KEY_FILE | public KEY | allowed-signers KEY")
	}
	switch args[0] {
	case "private":
		text, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		pem, err := sshkey.PrivateFromMinisign(text)
		if err != nil {
			return fmt.Errorf("%q: %w", args[1], err)
		}
		_, err = os.Stdout.Write(pem)
		return err
	case "public", "allowed-signers":
		pub, err := sshkey.PublicFromMinisign(args[1])
		if err != nil {
			return err
		}
		if args[0] == "public" {
			fmt.Println(pub)
		} else {
			fmt.Print(sshkey.AllowedSigners(pub))
		}
		return nil
	}
	return fmt.Errorf("unknown command %q", args[0])
}
