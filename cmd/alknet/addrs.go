package main

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/alkdev/alknet/core"
)

// nodeAddrs lists the node addresses a client can dial: bound to one
// address, that address; bound to an unspecified address (0.0.0.0, ::),
// every usable address of every interface, loopback last. 0.0.0.0 lists
// IPv4 addresses only, :: and an empty host both families. Link-local
// addresses are left out (they need a zone to be dialed).
func nodeAddrs(bound core.Addr, listen string) ([]core.Addr, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return []core.Addr{bound}, nil
	}
	ip, perr := netip.ParseAddr(host)
	if host != "" && (perr != nil || !ip.IsUnspecified()) {
		return []core.Addr{bound}, nil
	}
	_, port, err := net.SplitHostPort(bound.Host)
	if err != nil {
		return []core.Addr{bound}, nil
	}
	ifaddrs, err := net.InterfaceAddrs()
	addrs := hostAddrs(ifaddrs, host != "" && ip.Is4())
	out := make([]core.Addr, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, core.Addr{ID: bound.ID, Host: net.JoinHostPort(a.String(), port)})
	}
	if len(out) == 0 {
		out = append(out, bound)
	}
	if err != nil {
		return out, fmt.Errorf("interface addresses: %w", err)
	}
	return out, nil
}

// hostAddrs picks the dialable addresses among interface addresses:
// global and private ones first (IPv4 before IPv6, in interface order),
// then loopback; link-local, multicast and unspecified addresses are
// dropped, and with v4only every IPv6 address. Without any loopback
// interface address, 127.0.0.1 (and ::1 unless v4only) is added.
func hostAddrs(ifaddrs []net.Addr, v4only bool) []netip.Addr {
	var v4, v6, loop []netip.Addr
	for _, ia := range ifaddrs {
		var ip net.IP
		switch a := ia.(type) {
		case *net.IPNet:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		default:
			continue
		}
		addr, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		addr = addr.Unmap()
		switch {
		case v4only && !addr.Is4():
		case addr.IsUnspecified(), addr.IsLinkLocalUnicast(), addr.IsMulticast(), addr.IsInterfaceLocalMulticast():
		case addr.IsLoopback():
			loop = appendNew(loop, addr)
		case addr.Is4():
			v4 = appendNew(v4, addr)
		default:
			v6 = appendNew(v6, addr)
		}
	}
	if !slices.ContainsFunc(loop, netip.Addr.Is4) {
		loop = append(loop, netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	}
	if !v4only && !slices.ContainsFunc(loop, netip.Addr.Is6) {
		loop = append(loop, netip.IPv6Loopback())
	}
	// 127.0.0.1 before ::1.
	slices.SortStableFunc(loop, func(a, b netip.Addr) int {
		switch {
		case a.Is4() == b.Is4():
			return 0
		case a.Is4():
			return -1
		}
		return 1
	})
	return slices.Concat(v4, v6, loop)
}

func appendNew(s []netip.Addr, a netip.Addr) []netip.Addr {
	if slices.Contains(s, a) {
		return s
	}
	return append(s, a)
}

// ipv6Hint explains the error an unbracketed IPv6 address gives.
func ipv6Hint(err error) error {
	if err != nil && strings.Contains(err.Error(), "too many colons") {
		return fmt.Errorf("%w (an IPv6 address goes in brackets: [::1]:4433, or <nodeid>@[::1]:4433)", err)
	}
	return err
}

// listenError adds the IPv6 hint to an endpoint that could not listen.
func listenError(listen string, err error) error {
	if err == nil {
		return nil
	}
	err = ipv6Hint(err)
	if !strings.Contains(err.Error(), listen) {
		err = fmt.Errorf("listen %s: %w", listen, err)
	}
	return err
}
