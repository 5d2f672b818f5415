// Command crosscheck type-checks and vets the client side of portlease (the
// library, its protocol packages and cmd/portlease, test files included) for
// every system it supports, so that a change that breaks one fails `make
// test` on the Linux machine that runs it.
//
// It checks from source, as the compiler's front end does, and runs go
// vet's analyzers on the result, without generating code: `go build` and
// `go vet` for the ten targets compile the standard library ten times over,
// 7 m 48 s on a 2-core machine with an empty build cache (13 CPU-minutes;
// `make cross` still does it), where this takes 25 s (40 s of CPU). What it
// leaves out, code generation and linking, holds no OS-specific decision of
// ours. Linux itself is built, vetted and tested by `make test`.
//
// Usage: crosscheck [-targets os/arch,...] [packages]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/checker"
	"golang.org/x/tools/go/analysis/passes/appends"
	"golang.org/x/tools/go/analysis/passes/assign"
	"golang.org/x/tools/go/analysis/passes/atomic"
	"golang.org/x/tools/go/analysis/passes/bools"
	"golang.org/x/tools/go/analysis/passes/composite"
	"golang.org/x/tools/go/analysis/passes/copylock"
	"golang.org/x/tools/go/analysis/passes/defers"
	"golang.org/x/tools/go/analysis/passes/directive"
	"golang.org/x/tools/go/analysis/passes/errorsas"
	"golang.org/x/tools/go/analysis/passes/hostport"
	"golang.org/x/tools/go/analysis/passes/httpresponse"
	"golang.org/x/tools/go/analysis/passes/ifaceassert"
	"golang.org/x/tools/go/analysis/passes/loopclosure"
	"golang.org/x/tools/go/analysis/passes/lostcancel"
	"golang.org/x/tools/go/analysis/passes/nilfunc"
	"golang.org/x/tools/go/analysis/passes/printf"
	"golang.org/x/tools/go/analysis/passes/shift"
	"golang.org/x/tools/go/analysis/passes/sigchanyzer"
	"golang.org/x/tools/go/analysis/passes/slog"
	"golang.org/x/tools/go/analysis/passes/stdmethods"
	"golang.org/x/tools/go/analysis/passes/stringintconv"
	"golang.org/x/tools/go/analysis/passes/structtag"
	"golang.org/x/tools/go/analysis/passes/testinggoroutine"
	"golang.org/x/tools/go/analysis/passes/tests"
	"golang.org/x/tools/go/analysis/passes/timeformat"
	"golang.org/x/tools/go/analysis/passes/unmarshal"
	"golang.org/x/tools/go/analysis/passes/unreachable"
	"golang.org/x/tools/go/analysis/passes/unsafeptr"
	"golang.org/x/tools/go/analysis/passes/unusedresult"
	"golang.org/x/tools/go/analysis/passes/waitgroup"
	"golang.org/x/tools/go/packages"
)

// defaultTargets are the systems the client side supports (issue 12).
const defaultTargets = "linux/amd64,linux/arm64,darwin/amd64,darwin/arm64,windows/amd64,windows/arm64," +
	"freebsd/amd64,freebsd/arm64,openbsd/amd64,openbsd/arm64"

// defaultPackages are the client side.
var defaultPackages = []string{"./client/...", "./mapfile/...", "./natpmp/...", "./pcp/...", "./upnp/...", "./cmd/portlease"}

// vet is go vet's suite (cmd/vet), but for the analyzers that read
// assembly, cgo or build tags of files a load from source does not carry.
var vet = []*analysis.Analyzer{
	appends.Analyzer, assign.Analyzer, atomic.Analyzer, bools.Analyzer, composite.Analyzer,
	copylock.Analyzer, defers.Analyzer, directive.Analyzer, errorsas.Analyzer, hostport.Analyzer,
	httpresponse.Analyzer, ifaceassert.Analyzer, loopclosure.Analyzer, lostcancel.Analyzer,
	nilfunc.Analyzer, printf.Analyzer, shift.Analyzer, sigchanyzer.Analyzer, slog.Analyzer,
	stdmethods.Analyzer, stringintconv.Analyzer, structtag.Analyzer, testinggoroutine.Analyzer,
	tests.Analyzer, timeformat.Analyzer, unmarshal.Analyzer, unreachable.Analyzer,
	unsafeptr.Analyzer, unusedresult.Analyzer, waitgroup.Analyzer,
}

func main() {
	targets := flag.String("targets", defaultTargets, "comma-separated GOOS/GOARCH pairs")
	flag.Parse()
	pkgs := flag.Args()
	if len(pkgs) == 0 {
		pkgs = defaultPackages
	}
	list := strings.Split(*targets, ",")
	reports := make([]string, len(list))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	for i, t := range list {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			reports[i] = check(t, pkgs)
		})
	}
	wg.Wait()
	failed := false
	for i, r := range reports {
		if r == "" {
			fmt.Printf("crosscheck %s: type-checked and vetted\n", list[i])
			continue
		}
		failed = true
		fmt.Printf("crosscheck %s FAILED:\n%s", list[i], r)
	}
	if failed {
		fmt.Fprintln(os.Stderr, "crosscheck: the client side does not build or vet on every system (above)")
		os.Exit(1)
	}
}

// check loads pkgs for target from source, type-checking them and every
// dependency, and runs the vet analyzers on them. It returns the problems
// found, one a line, or "".
func check(target string, pkgs []string) string {
	goos, goarch, ok := strings.Cut(target, "/")
	if !ok {
		return fmt.Sprintf("target %q is not GOOS/GOARCH\n", target)
	}
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedImports | packages.NeedDeps |
			packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo | packages.NeedTypesSizes |
			packages.NeedModule,
		Env:   append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0"),
		Tests: true,
	}
	loaded, err := packages.Load(cfg, pkgs...)
	if err != nil {
		return err.Error() + "\n"
	}
	// A package and its test variant report the same problem: each once.
	var b strings.Builder
	seen := make(map[string]bool)
	report := func(line string) {
		if !seen[line] {
			seen[line] = true
			b.WriteString(line + "\n")
		}
	}
	packages.Visit(loaded, nil, func(p *packages.Package) {
		for _, e := range p.Errors {
			report(e.Error())
		}
	})
	if b.Len() > 0 {
		return b.String()
	}
	g, err := checker.Analyze(vet, loaded, nil)
	if err != nil {
		return err.Error() + "\n"
	}
	for act := range g.All() {
		if !act.IsRoot {
			continue
		}
		if act.Err != nil {
			report(fmt.Sprintf("%s: %s: %v", act.Package.PkgPath, act.Analyzer.Name, act.Err))
		}
		for _, d := range act.Diagnostics {
			report(fmt.Sprintf("%s: %s (%s)", act.Package.Fset.Position(d.Pos), d.Message, act.Analyzer.Name))
		}
	}
	return b.String()
}
