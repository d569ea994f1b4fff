package portfolio

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Random instance generators shared by the property, exactness and
// benchmark tests.

var formatPool = []string{"video", "display", "ctv", "native", "audio"}

// smallInstance draws a brute-forceable instance: up to maxQ quotes, at most
// 4 sellers and 4 seller minimums, so the binary choices can be enumerated.
func smallInstance(r *rand.Rand, maxQ int) ([]Quote, Brief) {
	n := 1 + r.IntN(maxQ)
	nSellers := 1 + r.IntN(4)
	mins := 0
	qs := make([]Quote, n)
	for i := range qs {
		q := Quote{
			ID:              fmt.Sprintf("q%02d", r.IntN(100)*100+i),
			Seller:          fmt.Sprintf("seller-%d", r.IntN(nSellers)),
			PackageID:       fmt.Sprintf("pkg-%d", i),
			CPM:             float64(1+r.IntN(6000)) / 100,
			Negotiable:      r.IntN(2) == 0,
			VolumeDiscounts: r.IntN(3) == 0,
		}
		if r.IntN(10) < 7 {
			q.AvailableImpressions = int64(1000 + r.IntN(3_000_000))
		}
		if mins < 4 && r.IntN(10) < 3 {
			q.MinImpressions = int64(1000 + r.IntN(1_500_000))
			mins++
		}
		for _, f := range formatPool {
			if r.IntN(3) == 0 {
				q.Formats = append(q.Formats, f)
			}
		}
		qs[i] = q
	}
	b := Brief{Budget: float64(1000+r.IntN(100_000)) + float64(r.IntN(100))/100}
	switch r.IntN(4) {
	case 0:
		b.PerSellerCap = b.Budget * (0.1 + 0.6*r.Float64())
	case 1:
		b.PerSellerCapShare = 0.2 + 0.6*r.Float64()
	case 2:
		b.PerSellerCap = b.Budget * (0.2 + 0.6*r.Float64())
		b.PerSellerCapShare = 0.2 + 0.6*r.Float64()
	}
	if r.IntN(2) == 0 {
		b.FormatMix = map[string]float64{}
		for k := 0; k < 1+r.IntN(2); k++ {
			b.FormatMix[formatPool[r.IntN(len(formatPool))]] = 0.05 + 0.55*r.Float64()
		}
	}
	if r.IntN(3) == 0 {
		b.MaxCPM = float64(10 + r.IntN(50))
	}
	if r.IntN(3) == 0 {
		b.MinSellers = 1 + r.IntN(3)
		// Above one impression at any CPM, so the threshold is this value.
		b.MinSellerSpend = float64(100 + r.IntN(5000))
	}
	if r.IntN(4) == 0 {
		b.Weights = Weights{Price: 0.5 + r.Float64(), Video: float64(r.IntN(20)), Display: float64(r.IntN(10)),
			Negotiable: float64(r.IntN(10)), Volume: float64(r.IntN(10)), PriceCeiling: float64(30 + r.IntN(40))}
	}
	return qs, b
}

// realisticInstance draws a campaign-sized instance: n quotes over 20-200
// sellers, several formats, seller minimums on a third of the quotes, seller
// caps and a format mix.
func realisticInstance(r *rand.Rand, n int) ([]Quote, Brief) {
	nSellers := min(200, max(20, n/50))
	if n < 20 {
		nSellers = max(2, n/2)
	}
	qs := make([]Quote, n)
	for i := range qs {
		s := r.IntN(nSellers)
		q := Quote{
			ID:              fmt.Sprintf("q%06d", i),
			Seller:          fmt.Sprintf("seller-%03d", s),
			PackageID:       fmt.Sprintf("pkg-%06d", i),
			CPM:             float64(200+r.IntN(5500)) / 100,
			Negotiable:      r.IntN(2) == 0,
			VolumeDiscounts: r.IntN(4) == 0,
		}
		switch r.IntN(6) {
		case 0, 1:
			q.Formats = []string{"display"}
		case 2:
			q.Formats = []string{"video"}
		case 3:
			q.Formats = []string{"ctv", "video"}
		case 4:
			q.Formats = []string{"native", "display"}
		default:
			q.Formats = []string{"audio"}
		}
		if r.IntN(10) < 9 {
			q.AvailableImpressions = int64(20_000 + r.IntN(1_500_000))
		}
		if r.IntN(3) == 0 {
			q.MinImpressions = int64(10_000 + r.IntN(300_000))
		}
		qs[i] = q
	}
	b := Brief{
		// Smaller campaigns get smaller budgets, so the budget binds.
		Budget:            float64(500_000+r.IntN(2_500_000)) * math.Min(1, float64(n)/200),
		PerSellerCapShare: 0.08 + 0.12*r.Float64(),
		FormatMix:         map[string]float64{"video": 0.3, "display": 0.25},
		MinSellers:        min(10, nSellers),
		MaxCPM:            50,
	}
	b.MinSellerSpend = b.Budget / 100
	return qs, b
}
