package hostnet

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/sdn-dev/sdn/datapath/link"
)

// Result says what Apply changed.
type Result struct {
	// ForwardingEnabled: net.ipv4.ip_forward was 0 and is 1 now; the
	// caller logs it once ("enabled IPv4 forwarding: workloads reach the
	// outside and node ports").
	ForwardingEnabled bool
	Changes           []string // nothing when the namespace already matched
}

// Apply makes the network namespace at nsPath ("" = the process's own, or
// a path such as /run/netns/NAME or /proc/PID/ns/net) hold what c
// describes: the sysctls, the service CIDR's route through the gateway
// device (which must exist), and our nftables table, replaced as a whole in
// one nft transaction when it differs. A second call with the same Config
// changes nothing. Bad input changes nothing.
func Apply(ctx context.Context, nsPath string, c Config) (Result, error) {
	p, err := Describe(c)
	if err != nil {
		return Result{}, err
	}
	h, err := link.Open(nsPath)
	if err != nil {
		return Result{}, err
	}
	defer h.Close()
	var res Result
	for _, s := range p.Sysctls {
		changed, err := h.SetNetSysctl(s.Key, s.Value)
		if err != nil {
			return res, fmt.Errorf("host networking: %w", err)
		}
		if changed {
			res.ForwardingEnabled = res.ForwardingEnabled || s.Key == "ipv4/ip_forward"
			res.Changes = append(res.Changes, fmt.Sprintf("net.%s = %s", strings.ReplaceAll(s.Key, "/", "."), s.Value))
		}
	}
	changes, err := h.SetProtoRoutes(RouteProtocol, p.GatewayDev, p.Routes)
	res.Changes = append(res.Changes, changes...)
	if err != nil {
		return res, fmt.Errorf("host networking: %w", err)
	}
	have, err := listTable(ctx, nsPath)
	if err != nil {
		return res, err
	}
	if strings.Contains(have, fmt.Sprintf("%q", stateComment(p.State))) {
		return res, nil
	}
	if _, err := nft(ctx, nsPath, p.Script(), "-f", "-"); err != nil {
		return res, fmt.Errorf("host networking: replace nftables table inet %s (the table left as it was: nft applies a file as one transaction): %w", Table, err)
	}
	res.Changes = append(res.Changes, fmt.Sprintf("nftables table inet %s: state %s", Table, p.State))
	return res, nil
}

// Remove takes away what Apply made in the namespace at nsPath: our
// nftables table, our route, and accept_local on gatewayDev (if it still
// exists). It leaves net.ipv4.ip_forward as it is: nothing records whether
// it was on before sdn, and other software on the host (a container
// runtime, a VPN) may need it, while switching it off cuts forwarding for
// all of them at once. It returns what it changed; removing twice is no
// error.
func Remove(ctx context.Context, nsPath, gatewayDev string) ([]string, error) {
	var done []string
	have, err := listTable(ctx, nsPath)
	if err != nil {
		return nil, err
	}
	if have != "" {
		if _, err := nft(ctx, nsPath, "", "delete", "table", "inet", Table); err != nil {
			return nil, fmt.Errorf("host networking: delete nftables table inet %s: %w", Table, err)
		}
		done = append(done, "delete nftables table inet "+Table)
	}
	h, err := link.Open(nsPath)
	if err != nil {
		return done, err
	}
	defer h.Close()
	changes, err := h.SetProtoRoutes(RouteProtocol, "", nil)
	done = append(done, changes...)
	if err != nil {
		return done, fmt.Errorf("host networking: %w", err)
	}
	if err := validDev(gatewayDev); err != nil {
		return done, err
	}
	if _, ok, err := h.Iface(gatewayDev); err != nil || !ok {
		return done, err
	}
	key := "ipv4/conf/" + gatewayDev + "/accept_local"
	if changed, err := h.SetNetSysctl(key, "0"); err != nil {
		return done, fmt.Errorf("host networking: %w", err)
	} else if changed {
		done = append(done, "net."+strings.ReplaceAll(key, "/", ".")+" = 0")
	}
	return done, nil
}

// listTable returns `nft list table inet sdn` in the namespace, or "" if
// there is no such table.
func listTable(ctx context.Context, nsPath string) (string, error) {
	tables, err := nft(ctx, nsPath, "", "list", "tables", "inet")
	if err != nil {
		return "", fmt.Errorf("host networking: list nftables tables: %w", err)
	}
	if !strings.Contains(tables+"\n", "table inet "+Table+"\n") {
		return "", nil
	}
	out, err := nft(ctx, nsPath, "", "list", "table", "inet", Table)
	if err != nil {
		return "", fmt.Errorf("host networking: list nftables table inet %s: %w", Table, err)
	}
	return out, nil
}

// nft runs the nft binary with args inside the namespace at nsPath (through
// nsenter, so no thread of ours changes namespace), stdin as its input,
// and returns its output. Errors carry nft's own message.
func nft(ctx context.Context, nsPath, stdin string, args ...string) (string, error) {
	bin, err := exec.LookPath("nft")
	if err != nil {
		return "", fmt.Errorf("the nft program is missing: install the nftables package: %w", err)
	}
	name, argv := bin, args
	if nsPath != "" {
		if name, err = exec.LookPath("nsenter"); err != nil {
			return "", fmt.Errorf("the nsenter program is missing: install the util-linux package: %w", err)
		}
		argv = append([]string{"--net=" + nsPath, "--", bin}, args...)
	}
	cmd := exec.CommandContext(ctx, name, argv...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = "no message"
		}
		return "", fmt.Errorf("%s in network namespace %s: %w: %s", strings.Join(append([]string{"nft"}, args...), " "), where(nsPath), err, msg)
	}
	return stdout.String(), nil
}

func where(nsPath string) string {
	if nsPath == "" {
		return "(current)"
	}
	return nsPath
}
