package capture

import (
	"errors"
	"fmt"

	"golang.org/x/net/bpf"
)

// maxFilterPorts bounds LiveConfig.Ports: classic BPF's conditional jumps
// reach 255 instructions, and a port costs two.
const maxFilterPorts = 64

// filterLayer is where the frames a filter runs on start.
type filterLayer int

const (
	// filterEthernet: an Ethernet header, untagged or with one inline
	// 802.1Q/802.1ad tag (a tag the kernel offloaded into the packet's
	// metadata is invisible to the filter, so that frame looks untagged).
	filterEthernet filterLayer = iota
	// filterIP: the IP header (SOCK_DGRAM sockets, devices without a link
	// header).
	filterIP
)

// filterProgram builds the classic BPF program the kernel runs on every
// packet of a live capture. It keeps, in both directions, IPv4 and IPv6:
// TCP segments from or to any of ports, ICMP destination-unreachable
// (type 3, which holds fragmentation-needed), and ICMPv6 error messages
// (types below 128, which hold packet-too-big), returning snaplen (the
// bytes to keep); it drops everything else, and IPv4 fragments other than
// the first (they carry no ports). As with tcpdump's "tcp port N", an IPv6
// TCP segment behind extension headers is not matched.
func filterProgram(layer filterLayer, ports []uint16, snaplen uint32) ([]bpf.Instruction, error) {
	if len(ports) == 0 {
		return nil, errors.New("no ports to filter on")
	}
	if len(ports) > maxFilterPorts {
		return nil, fmt.Errorf("%d ports to filter on, at most %d", len(ports), maxFilterPorts)
	}
	a := &asm{}
	switch layer {
	case filterEthernet:
		// Long hops are unconditional jumps: a conditional one reaches 255
		// instructions, less than a block with many ports.
		a.ins(bpf.LoadAbsolute{Off: 12, Size: 2})
		a.jeq(0x8100, "tagged", "")
		a.jeq(0x88a8, "tagged", "untagged")
		a.label("tagged")
		a.ins(bpf.LoadAbsolute{Off: 16, Size: 2})
		a.jump("e18")
		a.label("untagged")
		ipBlock(a, "e14", 14, ports, snaplen)
		a.label("e18")
		ipBlock(a, "e18", 18, ports, snaplen)
	case filterIP:
		a.ins(bpf.LoadAbsolute{Off: 0, Size: 1})
		a.ins(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4})
		a.jeq(4, "ip4", "")
		a.jeq(6, "ip6", "")
		a.ins(bpf.RetConstant{Val: 0})
		a.label("ip4")
		a.ins(bpf.LoadConstant{Dst: bpf.RegA, Val: 0x0800})
		a.jump("ip")
		a.label("ip6")
		a.ins(bpf.LoadConstant{Dst: bpf.RegA, Val: 0x86dd})
		a.label("ip")
		ipBlock(a, "ip", 0, ports, snaplen)
	default:
		return nil, fmt.Errorf("unknown filter layer %d", layer)
	}
	return a.resolve()
}

// ipBlock emits the test of an IP packet at offset base whose EtherType is
// in register A. Each of its sections ends in its own returns, so no
// conditional jump crosses more than one list of ports. Labels are
// prefixed with p.
func ipBlock(a *asm, p string, base uint32, ports []uint16, snaplen uint32) {
	accept := func(l string) {
		a.label(l)
		a.ins(bpf.RetConstant{Val: snaplen})
	}
	reject := func(l string) {
		a.label(l)
		a.ins(bpf.RetConstant{Val: 0})
	}
	a.jeq(0x0800, "", p+".not4")
	// IPv4: TCP on a port, or ICMP type 3; first fragments only.
	a.ins(bpf.LoadAbsolute{Off: base + 9, Size: 1})
	a.jeq(6, "", p+".icmp4")
	a.ins(bpf.LoadAbsolute{Off: base + 6, Size: 2})
	a.jset(0x1fff, p+".rej4", "")
	a.ins(bpf.LoadMemShift{Off: base})
	a.ins(bpf.LoadIndirect{Off: base, Size: 2})
	a.ports(ports, p+".acc4")
	a.ins(bpf.LoadIndirect{Off: base + 2, Size: 2})
	a.ports(ports, p+".acc4")
	reject(p + ".rej4")
	accept(p + ".acc4")
	a.label(p + ".icmp4")
	a.jeq(1, "", p+".rej4i")
	a.ins(bpf.LoadAbsolute{Off: base + 6, Size: 2})
	a.jset(0x1fff, p+".rej4i", "")
	a.ins(bpf.LoadMemShift{Off: base})
	a.ins(bpf.LoadIndirect{Off: base, Size: 1})
	a.jeq(3, p+".acc4i", p+".rej4i")
	accept(p + ".acc4i")
	reject(p + ".rej4i")
	// IPv6: TCP on a port right after the fixed header, or an ICMPv6 error.
	a.label(p + ".not4")
	a.jeq(0x86dd, "", p+".rej")
	a.ins(bpf.LoadAbsolute{Off: base + 6, Size: 1})
	a.jeq(6, "", p+".icmp6")
	a.ins(bpf.LoadAbsolute{Off: base + 40, Size: 2})
	a.ports(ports, p+".acc6")
	a.ins(bpf.LoadAbsolute{Off: base + 42, Size: 2})
	a.ports(ports, p+".acc6")
	reject(p + ".rej6")
	accept(p + ".acc6")
	a.label(p + ".icmp6")
	a.jeq(58, "", p+".rej")
	a.ins(bpf.LoadAbsolute{Off: base + 40, Size: 1})
	a.jge(128, p+".rej", "")
	a.ins(bpf.RetConstant{Val: snaplen})
	reject(p + ".rej")
}

// asm assembles a program with symbolic jump targets; an empty target
// means the next instruction.
type asm struct {
	prog   []bpf.Instruction
	labels map[string]int
	jumps  []pendingJump
	err    error
}

type pendingJump struct {
	at          int
	true, false string
}

func (a *asm) ins(i bpf.Instruction) { a.prog = append(a.prog, i) }

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	if _, dup := a.labels[name]; dup {
		a.err = fmt.Errorf("label %s defined twice", name)
	}
	a.labels[name] = len(a.prog)
}

func (a *asm) cond(c bpf.JumpTest, v uint32, t, f string) {
	a.jumps = append(a.jumps, pendingJump{len(a.prog), t, f})
	a.ins(bpf.JumpIf{Cond: c, Val: v})
}

func (a *asm) jeq(v uint32, t, f string)  { a.cond(bpf.JumpEqual, v, t, f) }
func (a *asm) jge(v uint32, t, f string)  { a.cond(bpf.JumpGreaterOrEqual, v, t, f) }
func (a *asm) jset(v uint32, t, f string) { a.cond(bpf.JumpBitsSet, v, t, f) }

func (a *asm) jump(to string) {
	a.jumps = append(a.jumps, pendingJump{at: len(a.prog), true: to})
	a.ins(bpf.Jump{})
}

// ports emits one comparison of register A per port, jumping to match on
// any; it falls through when none matched.
func (a *asm) ports(ports []uint16, match string) {
	for _, p := range ports {
		a.jeq(uint32(p), match, "")
	}
}

// resolve turns the symbolic targets into skips.
func (a *asm) resolve() ([]bpf.Instruction, error) {
	if a.err != nil {
		return nil, a.err
	}
	skip := func(from int, to string) (int, error) {
		if to == "" {
			return 0, nil
		}
		at, ok := a.labels[to]
		if !ok {
			return 0, fmt.Errorf("undefined label %s", to)
		}
		if at <= from {
			return 0, fmt.Errorf("backward jump to %s", to)
		}
		return at - from - 1, nil
	}
	for _, j := range a.jumps {
		t, err := skip(j.at, j.true)
		if err != nil {
			return nil, err
		}
		switch in := a.prog[j.at].(type) {
		case bpf.Jump:
			in.Skip = uint32(t)
			a.prog[j.at] = in
		case bpf.JumpIf:
			f, err := skip(j.at, j.false)
			if err != nil {
				return nil, err
			}
			if t > 255 || f > 255 {
				return nil, fmt.Errorf("jump of %d or %d instructions is out of classic BPF's reach", t, f)
			}
			in.SkipTrue, in.SkipFalse = uint8(t), uint8(f)
			a.prog[j.at] = in
		}
	}
	return a.prog, nil
}
