package msg

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWriteFuzzCorpus regenerates testdata/fuzz when MSG_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("MSG_WRITE_CORPUS") != "1" {
		t.Skip("set MSG_WRITE_CORPUS=1 to regenerate the seed corpus")
	}
	a, b := fixedNode(t, 1), fixedNode(t, 2)
	write := func(target, name string, data []byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env, err := Seal(a.key, b.msg.Record(), &Message{ContentType: "text/plain", Body: []byte("seed"), Time: time.UnixMilli(1_700_000_000_000)})
	if err != nil {
		t.Fatal(err)
	}
	write("FuzzOpen", "valid-1k", env)
	bad := append([]byte(nil), env...)
	bad[len(bad)/2] ^= 1
	write("FuzzOpen", "flipped", bad)
	write("FuzzOpen", "short", env[:Overhead])
	m := &Message{ID: MessageID{9}, Sender: a.id(), Recipient: b.id(), Time: time.UnixMilli(7), ContentType: "text/plain", Body: []byte("seed body")}
	write("FuzzParsePlain", "valid", plainOf(m, a.key, Buckets[0]))
	write("FuzzParsePlain", "zeros", make([]byte, fixedPlain))
	frame := func(op Op, p []byte) []byte {
		out := binary.BigEndian.AppendUint32([]byte{byte(op)}, uint32(len(p)))
		return append(out, p...)
	}
	bid := b.id()
	write("FuzzDeliveryRequest", "deliver", frame(OpDeliver, env))
	write("FuzzDeliveryRequest", "deliver-twice", append(frame(OpDeliver, env), frame(OpDeliver, env)...))
	write("FuzzDeliveryRequest", "key", frame(OpKey, bid[:]))
	write("FuzzDeliveryRequest", "fetch", frame(OpFetch, append(bid[:], make([]byte, 10)...)))
	write("FuzzDeliveryRequest", "oversized", []byte{byte(OpDeliver), 0x7f, 0xff, 0xff, 0xff})
}
