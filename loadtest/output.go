package loadtest

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// jsonOutput writes k6's JSON lines format (--out json): one Metric
// declaration per metric, then one Point per sample. Lines are built by
// hand (no reflection) and buffered.
type jsonOutput struct {
	mu  sync.Mutex
	w   *bufio.Writer
	buf []byte
	err error
}

func newJSONOutput(w io.Writer) *jsonOutput {
	return &jsonOutput{w: bufio.NewWriterSize(w, 64<<10)}
}

func (o *jsonOutput) metric(m Metric, thresholds []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.buf[:0]
	b = append(b, `{"type":"Metric","data":{"name":`...)
	b = appendJSONString(b, m.Name)
	b = append(b, `,"type":"`...)
	b = append(b, m.Type.String()...)
	b = append(b, `","contains":"`...)
	b = append(b, m.Contains.String()...)
	b = append(b, `","thresholds":[`...)
	for i, t := range thresholds {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t)
	}
	b = append(b, `],"submetrics":null},"metric":`...)
	b = appendJSONString(b, m.Name)
	b = append(b, "}\n"...)
	o.write(b)
}

func (o *jsonOutput) point(name string, tags *TagSet, v float64, t time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if tags.json == "" {
		tags.json = string(appendTagsJSON(nil, tags.tags))
	}
	b := o.buf[:0]
	b = append(b, `{"type":"Point","data":{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","value":`...)
	if math.IsInf(v, 0) || math.IsNaN(v) {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	b = append(b, `,"tags":`...)
	b = append(b, tags.json...)
	b = append(b, `},"metric":`...)
	b = appendJSONString(b, name)
	b = append(b, "}\n"...)
	o.write(b)
}

func (o *jsonOutput) write(b []byte) {
	o.buf = b
	if o.err == nil {
		_, o.err = o.w.Write(b)
	}
}

func (o *jsonOutput) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err == nil {
		o.err = o.w.Flush()
	}
}

func appendTagsJSON(b []byte, tags []Tag) []byte {
	b = append(b, '{')
	for i, t := range tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t.Key)
		b = append(b, ':')
		b = appendJSONString(b, t.Value)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// progress prints k6's one-line live status.
type progress struct {
	r *runner
	w io.Writer
}

func (p *progress) print(final bool) {
	r := p.r
	var complete, interrupted, dropped int64
	var total time.Duration
	for _, s := range r.scenarios {
		complete += s.completed.Load()
		interrupted += s.interrupted.Load()
		dropped += s.droppedIters.Load()
		total = max(total, s.sc.StartTime+s.sc.Executor.duration())
	}
	el := r.elapsed()
	pct := 100.0
	if total > 0 && !final {
		pct = min(100, 100*float64(el)/float64(total))
	}
	line := fmt.Sprintf("running (%s), %d/%d VUs, %d complete and %d interrupted iterations", clock(el), r.active.Load(), r.allocated.Load(), complete, interrupted)
	if dropped > 0 {
		line += fmt.Sprintf(", %d dropped", dropped)
	}
	line += fmt.Sprintf(" [%3.0f%%]", pct)
	end := ""
	if final {
		end = "\n"
	}
	fmt.Fprintf(p.w, "\r%s\x1b[K%s", line, end)
}

// clock formats d as k6's progress does: 1m02.5s.
func clock(d time.Duration) string {
	m := int(d / time.Minute)
	s := (d % time.Minute).Seconds()
	return fmt.Sprintf("%dm%04.1fs", m, s)
}
