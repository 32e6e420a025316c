// Command image-payload is the program the image tests put in their FROM scratch images (built
// with CGO_ENABLED=0, so builds need no network and no base image). Without arguments it says
// hello and waits until stopped, as a service would; --fail prints numbered lines and exits 1
// (a failing RUN); --spew prints without end (a build that floods its log); --copy SRC DST
// copies a file (a RUN that changes the image without a shell); --serve ADDR answers HTTP on ADDR
// (GET / says hello and the pod's name, GET /healthz is its readiness probe), as a web app would.
package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	arg := ""
	if len(os.Args) > 1 {
		arg = os.Args[1]
	}
	switch arg {
	case "--fail":
		for i := 1; i <= 40; i++ {
			fmt.Printf("payload: step %d of a failing build\n", i)
		}
		fmt.Println("payload: \x1b[31mfatal\x1b[0m: this step fails on purpose")
		os.Exit(1)
	case "--copy":
		if len(os.Args) != 4 {
			fmt.Fprintln(os.Stderr, "usage: payload --copy SRC DST")
			os.Exit(2)
		}
		b, err := os.ReadFile(os.Args[2])
		if err == nil {
			err = os.WriteFile(os.Args[3], b, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "payload:", err)
			os.Exit(1)
		}
		fmt.Printf("payload: copied %s to %s\n", os.Args[2], os.Args[3])
		return
	case "--serve":
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: payload --serve ADDR")
			os.Exit(2)
		}
		host, _ := os.Hostname()
		http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "payload: hello from %s\n", host) })
		fmt.Println("payload: serving on", os.Args[2])
		err := http.ListenAndServe(os.Args[2], nil)
		fmt.Fprintln(os.Stderr, "payload:", err)
		os.Exit(1)
	case "--spew":
		w := bufio.NewWriterSize(os.Stdout, 64<<10)
		line := strings.Repeat("y", 1023) + "\n"
		for {
			if _, err := w.WriteString(line); err != nil {
				os.Exit(1)
			}
		}
	}
	fmt.Println("payload: hello")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
