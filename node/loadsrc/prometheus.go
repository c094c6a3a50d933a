package loadsrc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// prometheus reads one metric of a text exposition endpoint and sums the
// samples whose labels match.
type prometheus struct {
	url     string
	metric  string
	labels  map[string]string
	maxBody int
	client  *http.Client
}

func newPrometheus(set Settings) *prometheus {
	return &prometheus{url: set.URL, metric: set.Metric, labels: set.Labels, maxBody: set.MaxBody, client: &http.Client{}}
}

// Poll fetches the endpoint and sums the metric.
func (p *prometheus) Poll(ctx context.Context) (Reading, error) {
	body, err := p.fetch(ctx)
	if err != nil {
		return Reading{}, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return Reading{}, fmt.Errorf("parse %s: %w", p.url, err)
	}
	sum, err := sumFamily(families[p.metric], p.metric, p.labels)
	if err != nil {
		return Reading{}, err
	}
	return Reading{Load: int(math.Round(sum))}, nil
}

func (p *prometheus) fetch(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err // *url.Error names the method and the URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", p.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(p.maxBody)+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", p.url, err)
	}
	if len(body) > p.maxBody {
		return nil, fmt.Errorf("GET %s: body exceeds %d bytes", p.url, p.maxBody)
	}
	return body, nil
}

// sumFamily sums the counter, gauge or untyped samples of f carrying every
// label of want. No matching sample is an error: a typo in a label must
// not read as a load of zero.
func sumFamily(f *dto.MetricFamily, name string, want map[string]string) (float64, error) {
	if f == nil {
		return 0, fmt.Errorf("metric %s: not exposed", name)
	}
	var sum float64
	matched := 0
	for _, m := range f.GetMetric() {
		if !matches(m.GetLabel(), want) {
			continue
		}
		v, err := sampleValue(f.GetType(), m)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", name, err)
		}
		sum += v
		matched++
	}
	switch {
	case matched == 0:
		return 0, fmt.Errorf("metric %s: no sample matches labels %v", name, want)
	case math.IsNaN(sum) || math.IsInf(sum, 0) || sum < 0 || sum > math.MaxInt32:
		return 0, fmt.Errorf("metric %s: sum %g is not a load", name, sum)
	}
	return sum, nil
}

func matches(labels []*dto.LabelPair, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, l := range labels {
			if l.GetName() == k {
				found = l.GetValue() == v
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

var errMetricType = errors.New("not a counter, gauge or untyped metric")

func sampleValue(t dto.MetricType, m *dto.Metric) (float64, error) {
	switch t {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue(), nil
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue(), nil
	case dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue(), nil
	default:
		return 0, fmt.Errorf("%s: %w", t, errMetricType)
	}
}
