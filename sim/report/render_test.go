package report

import (
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// chromium returns the path of a Chromium or Chrome binary, or "".
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestIndexRendersInChromium renders index.html in headless Chromium and checks the
// screenshot: the four plots must have loaded and drawn (their blue and orange lines and
// bars are the only such pixels on the page). Without Chromium the test is skipped, unless
// SWITCHYARD_REQUIRE_CHROMIUM is set (CI's sim phase installs Chromium and sets it).
func TestIndexRendersInChromium(t *testing.T) {
	bin := chromium()
	if bin == "" {
		if os.Getenv("SWITCHYARD_REQUIRE_CHROMIUM") != "" {
			t.Fatal("SWITCHYARD_REQUIRE_CHROMIUM is set but no chromium binary is in PATH")
		}
		t.Skip("chromium not installed; CI installs it (.ci/run, phase sim)")
	}
	dir := t.TempDir()
	if err := Write(dir, smallRun(t, 9)); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--window-size=1280,1600", "--screenshot="+shot, "file://"+filepath.Join(dir, "index.html"))
	cmd.Env = append(os.Environ(), "HOME="+dir) // Chromium writes a profile
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	fh, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 1600 {
		t.Fatalf("screenshot is %v", b)
	}
	blue, orange := countNear(img, blue.R, blue.G, blue.B), countNear(img, orange.R, orange.G, orange.B)
	t.Logf("screenshot: %d blue and %d orange plot pixels", blue, orange)
	if blue < 2000 || orange < 200 {
		t.Fatalf("the plots did not render: %d blue, %d orange pixels", blue, orange)
	}
}

func countNear(img image.Image, r, g, b uint8) int {
	n := 0
	bd := img.Bounds()
	near := func(a uint32, b uint8) bool { x := int(a>>8) - int(b); return x > -24 && x < 24 }
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if near(cr, r) && near(cg, g) && near(cb, b) {
				n++
			}
		}
	}
	return n
}
