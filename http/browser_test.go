package alkhttp

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"image/png"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testCA makes a CA and a certificate it signs for name, writes the chain
// (leaf, then CA) and the leaf key as PEM files in dir, and returns their
// paths and the base64 SHA-256 of the CA's public key (SPKI).
func testCA(t *testing.T, dir, name string) (certFile, keyFile, caSPKI string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alknet test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &leafKey.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	require.NoError(t, os.WriteFile(certFile, chain, 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	sum := sha256.Sum256(ca.RawSubjectPublicKeyInfo)
	return certFile, keyFile, base64.StdEncoding.EncodeToString(sum[:])
}

// browserPage fetches the gateway and makes a WebSocket call, then shows
// the outcome in #result and paints the page green (all passed) or red.
const browserPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>alknet</title>
<style>body{margin:0;height:100vh;background:#888;font:24px sans-serif}</style></head>
<body><pre id="result">running</pre>
<script>
const token = "TOKEN";
async function viaFetch() {
  const r = await fetch("/v1/call/test/echo", {method: "POST",
    headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"},
    body: JSON.stringify({msg: "from chromium"})});
  const j = await r.json();
  return "fetch:" + r.status + ":" + j.msg + ":" + j.caller;
}
function viaSocket() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket("wss://" + location.host + "/v1/ws");
    const got = {};
    ws.onopen = () => {
      for (const [id, n] of [["a", 2], ["b", 20]]) {
        ws.send(JSON.stringify({type: "call.requested", id,
          payload: {operationId: "/test/double", input: n, auth_token: token}}));
      }
    };
    ws.onmessage = (ev) => {
      const env = JSON.parse(ev.data);
      got[env.id] = env.type + "=" + JSON.stringify(env.payload.output);
      if (got.a && got.b) { ws.close(); resolve("ws:" + got.a + "," + got.b); }
    };
    ws.onerror = () => reject(new Error("websocket error"));
  });
}
async function readStream(ctl) {
  const r = await fetch("/v1/subscribe/test/forever", {headers: {"Authorization": "Bearer " + token}, signal: ctl.signal});
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let text = "";
  while ((text.match(/^data: /gm) || []).length < 2) {
    const {value} = await reader.read();
    text += dec.decode(value);
  }
  return "sse:" + r.headers.get("content-type");
}
window.alknetResult = (async () => {
  const out = document.getElementById("result");
  const ctl = new AbortController();
  try {
    const f = await viaFetch();
    const s = await readStream(ctl);
    const w = await viaSocket();
    out.textContent = f + " " + s + " " + w;
    const ok = f === "fetch:200:from chromium:user" && s === "sse:text/event-stream" && w === "ws:call.responded=4,call.responded=40";
    document.body.style.background = ok ? "#00c000" : "#c00000";
  } catch (e) {
    out.textContent = "error: " + e;
    document.body.style.background = "#c00000";
  }
  ctl.abort();
  return out.textContent;
})();
</script></body></html>
`

// Headless Chromium loads a page from the static root over a public name
// (a certificate from a CA the test made, trusted by its key), which calls
// the gateway with fetch, reads an event stream and calls over a
// WebSocket; the test reads the page's result and checks the colour of a
// screenshot, both through the DevTools protocol.
func TestChromium(t *testing.T) {
	bin := needClient(t, "chromium", "chromium")
	dir := t.TempDir()
	certFile, keyFile, caSPKI := testCA(t, dir, "alknet.test")
	n := startNodeCore(t, nil, func(c *core.Config) {
		c.TLSCerts = []core.CertFiles{{Cert: certFile, Key: keyFile}}
	})
	writeFile(t, filepath.Join(n.root, "index.html"), strings.Replace(browserPage, "TOKEN", tokenUser, 1))
	port := n.ep.TCPAddr().String()[strings.LastIndexByte(n.ep.TCPAddr().String(), ':')+1:]
	b := startChromium(t, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=640,480",
		"--user-data-dir="+t.TempDir(),
		"--host-resolver-rules=MAP alknet.test 127.0.0.1",
		"--ignore-certificate-errors-spki-list="+caSPKI)
	session := b.open(t, "https://alknet.test:"+port+"/")
	result := b.evaluate(t, session, `new Promise(resolve => {
		const wait = () => window.alknetResult ? window.alknetResult.then(resolve) : setTimeout(wait, 20);
		wait();
	})`)
	assert.Equal(t, "fetch:200:from chromium:user sse:text/event-stream ws:call.responded=4,call.responded=40", result)

	var shot struct {
		Data string `json:"data"`
	}
	b.call(t, session, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	raw, err := base64.StdEncoding.DecodeString(shot.Data)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "shot.png"), raw, 0o644))
	img, err := png.Decode(bytes.NewReader(raw))
	require.NoError(t, err)
	assert.Equal(t, 640, img.Bounds().Dx())
	r, g, bl, _ := img.At(img.Bounds().Dx()-20, img.Bounds().Dy()-20).RGBA()
	assert.True(t, r>>8 < 40 && g>>8 > 160 && bl>>8 < 40, "the page is not green (all passed): rgb(%d,%d,%d)", r>>8, g>>8, bl>>8)
}

// chromium is a browser driven over the DevTools protocol on a pipe
// (--remote-debugging-pipe: JSON messages ended by NUL, on fds 3 and 4).
type chromium struct {
	w    *os.File
	mu   sync.Mutex
	id   int
	wait map[int]chan cdpMessage
}

type cdpMessage struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func startChromium(t *testing.T, bin string, args ...string) *chromium {
	t.Helper()
	toChrome, ourEnd, err := os.Pipe() // chromium reads fd 3
	require.NoError(t, err)
	fromChrome, chromeEnd, err := os.Pipe() // chromium writes fd 4
	require.NoError(t, err)
	cmd := exec.Command(bin, append(args, "--remote-debugging-pipe", "about:blank")...)
	cmd.ExtraFiles = []*os.File{toChrome, chromeEnd}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	_ = toChrome.Close()
	_ = chromeEnd.Close()
	c := &chromium{w: ourEnd, wait: map[int]chan cdpMessage{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		br := bufio.NewReader(fromChrome)
		for {
			msg, err := br.ReadBytes(0)
			if err != nil {
				return
			}
			var m cdpMessage
			if json.Unmarshal(msg[:len(msg)-1], &m) != nil || m.ID == 0 {
				continue // an event
			}
			c.mu.Lock()
			ch := c.wait[m.ID]
			delete(c.wait, m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}()
	t.Cleanup(func() {
		_ = c.send(0, "", "Browser.close", nil)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = ourEnd.Close()
		<-done
		_ = fromChrome.Close()
		if t.Failed() {
			t.Logf("chromium stderr:\n%s", lastLines(stderr.String(), 30))
		}
	})
	return c
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// send writes one command; id 0 means a fresh one. It returns the id.
func (c *chromium) send(id int, session, method string, params any) error {
	if params == nil {
		params = map[string]any{}
	}
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err = c.w.Write(append(b, 0))
	return err
}

// call runs one command and decodes its result into out.
func (c *chromium) call(t *testing.T, session, method string, params, out any) {
	t.Helper()
	if err := c.try(session, method, params, out); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
}

func (c *chromium) try(session, method string, params, out any) error {
	ch := make(chan cdpMessage, 1)
	c.mu.Lock()
	c.id++
	id := c.id
	c.wait[id] = ch
	c.mu.Unlock()
	if err := c.send(id, session, method, params); err != nil {
		return err
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return errors.New(m.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(m.Result, out)
		}
		return nil
	case <-time.After(60 * time.Second):
		return errors.New("no answer within 60s")
	}
}

// open opens url in a new tab and returns the session attached to it.
func (c *chromium) open(t *testing.T, url string) string {
	t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	c.call(t, "", "Target.createTarget", map[string]any{"url": url}, &target)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	c.call(t, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att)
	return att.SessionID
}

// evaluate awaits a JavaScript promise in the page and returns its string
// value, retrying while the page is still navigating.
func (c *chromium) evaluate(t *testing.T, session, expr string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var res struct {
			Result struct {
				Value any `json:"value"`
			} `json:"result"`
			ExceptionDetails *struct {
				Text string `json:"text"`
			} `json:"exceptionDetails"`
		}
		err := c.try(session, "Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, &res)
		if err == nil && res.ExceptionDetails == nil {
			v, _ := res.Result.Value.(string)
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("evaluate: %v %+v", err, res.ExceptionDetails)
		}
		time.Sleep(50 * time.Millisecond) // the page's context is being replaced by the navigation
	}
}
