// Command labdemo is `make demo`: it builds a throw-away network lab of three
// namespaces (a LAN host, a gateway, a WAN host), runs portleased on the
// gateway, maps a port from the LAN host with natpmpc, serves a small page on
// the LAN host, fetches it from the WAN host through the mapping, and removes
// the lab. Each step is printed in plain words. Nothing leaves the lab.
// The LAN host's side is the portlease client: `portlease probe`, then
// `portlease map`.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

func main() {
	bin := flag.String("portleased", "bin/portleased", "the portleased binary to run on the gateway")
	client := flag.String("portlease", "bin/portlease", "the portlease client to run on the LAN host")
	flag.Parse()
	if err := demo(*bin, *client); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

func say(format string, args ...any) {
	fmt.Printf("    "+format+"\n", args...)
}

func demo(bin, client string) error {
	if os.Geteuid() != 0 {
		return errors.New("the demo needs root, to create network namespaces and nftables tables")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if client, err = filepath.Abs(client); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_ = netlab.RemoveStale(ctx)

	step("Creating the lab: three network namespaces joined by virtual links")
	lab, err := netlab.Setup(ctx, netlab.Config{})
	if err != nil {
		return err
	}
	stop := lab.HandleInterrupt()
	defer stop()
	defer func() {
		step("Removing the lab")
		if err := lab.Close(); err != nil {
			say("could not remove everything: %v", err)
			return
		}
		say("all namespaces removed")
	}()
	lan := lab.LAN[0]
	say("LAN host  %-15s (namespace %s)", lan.Addr4, lan.NS)
	say("gateway   %-15s on the LAN, %s on the WAN (namespace %s)", lab.GatewayLANAddr4, lab.GatewayWANAddr4, lab.Gateway.NS)
	say("WAN host  %-15s the outside world (namespace %s)", lab.WAN.Addr4, lab.WAN.NS)

	step("Starting portleased on the gateway")
	// A directory the daemon can still read and write once it has dropped
	// to its user (SIGHUP reads the configuration again).
	dir, err := labpeers.NewStateDir("")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// portlease keeps its PCP nonce key (--nonce-key) in the demo's
	// directory, so that nothing of the demo stays on the machine.
	if err := os.Setenv("XDG_STATE_HOME", dir); err != nil {
		return err
	}
	// Its log is printed as it comes.
	logr, logw := io.Pipe()
	defer logw.Close()
	go func() {
		sc := bufio.NewScanner(logr)
		for sc.Scan() {
			fmt.Printf("    [portleased] %s\n", sc.Text())
		}
	}()
	daemon, err := labpeers.NewPortleased(lab, labpeers.PortleasedConfig{Binary: bin, Dir: dir, Log: logw,
		StateFile: filepath.Join(dir, "leases")})
	if err != nil {
		return err
	}
	conf, err := os.ReadFile(daemon.ConfigPath())
	if err != nil {
		return err
	}
	say("configuration:\n%s", indent(string(conf), "      "))
	if err := daemon.Start(ctx); err != nil {
		return err
	}
	defer func() { _ = daemon.Kill() }()

	step("Looking for the gateway from the LAN host (portlease probe)")
	out, err := lan.Run(ctx, client, "probe", "--discovery-wait", "500ms")
	if err != nil {
		return err
	}
	fmt.Println(indent(out, "    "))

	step("Serving a small page on the LAN host, port 8080")
	ln, err := lan.Listen("tcp4", ":8080")
	if err != nil {
		return err
	}
	page := "Hello from the LAN host, reached through portleased!\n"
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, page)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	step("Fetching it from the WAN host before any mapping: it must fail")
	if body, err := fetch(ctx, lab.WAN, fmt.Sprintf("http://%s:8080/", lab.GatewayWANAddr4)); err == nil {
		return fmt.Errorf("the page was reachable without a mapping: %q", body)
	} else {
		say("as expected, no way in: %v", err)
	}

	step("Mapping TCP port 8080 from the LAN host (portlease map tcp 8080)")
	out, err = lan.Run(ctx, client, "map", "tcp", "8080", "--lifetime", "3600", "--discovery-wait", "500ms")
	if err != nil {
		return err
	}
	say("%s", strings.TrimSpace(out))
	m := regexp.MustCompile(`mapped TCP [0-9.]+:(\d+) -> `).FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("portlease map printed no mapping:\n%s", out)
	}
	rules, err := lab.Gateway.Run(ctx, "nft", "list", "map", "inet", "portleased", "inbound4")
	if err != nil {
		return err
	}
	say("the kernel now holds one map element for it:\n%s", indent(rules, "      "))

	step("Fetching the page from the WAN host through the mapping")
	url := fmt.Sprintf("http://%s:%s/", lab.GatewayWANAddr4, m[1])
	body, err := fetch(ctx, lab.WAN, url)
	if err != nil {
		return fmt.Errorf("fetch %s from the WAN host: %w", url, err)
	}
	say("GET %s -> %q", url, strings.TrimSpace(body))

	step("Restarting portleased (SIGTERM, then start): the mapping survives, no client involved")
	if err := daemon.Stop(); err != nil {
		return err
	}
	if body, err := fetch(ctx, lab.WAN, url); err != nil {
		return fmt.Errorf("fetch %s while portleased was stopped: %w", url, err)
	} else {
		say("while it is stopped the kernel still forwards: GET %s -> %q", url, strings.TrimSpace(body))
	}
	if err := daemon.Start(ctx); err != nil {
		return err
	}
	if body, err := fetch(ctx, lab.WAN, url); err != nil {
		return fmt.Errorf("fetch %s after the restart: %w", url, err)
	} else {
		say("started again, the lease came back from the state file: GET %s -> %q", url, strings.TrimSpace(body))
	}

	step("Deleting the mapping (portlease unmap tcp 8080) and fetching again: it must fail")
	if out, err := lan.Run(ctx, client, "unmap", "tcp", "8080", "--discovery-wait", "500ms"); err != nil {
		return err
	} else {
		say("%s", strings.TrimSpace(out))
	}
	if body, err := fetch(ctx, lab.WAN, url); err == nil {
		return fmt.Errorf("the page was still reachable after deletion: %q", body)
	} else {
		say("closed again: %v", err)
	}

	step("Stopping portleased (SIGTERM): its table stays for the next start, with no mapping in it")
	if err := daemon.Stop(); err != nil {
		return err
	}
	elems, err := lab.Gateway.Run(ctx, "nft", "list", "map", "inet", "portleased", "inbound4")
	if err != nil {
		return err
	}
	if strings.Contains(elems, "elements") {
		return fmt.Errorf("the kernel still holds mappings:\n%s", elems)
	}
	say("the kernel holds no mapping:\n%s", indent(elems, "      "))
	fmt.Println("\nThe demo worked.")
	return nil
}

// fetch GETs url from inside host's namespace.
func fetch(ctx context.Context, host *netlab.Host, url string) (string, error) {
	client := &http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return host.Dial(ctx, "tcp4", addr)
			},
			DisableKeepAlives: true,
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix)
}
