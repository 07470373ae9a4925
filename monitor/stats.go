package monitor

import "math"

// binomLowerTail returns P(X <= k) for X ~ Binomial(n, p), exactly (summed
// in log space, so it holds for large n and tiny probabilities).
func binomLowerTail(k, n int, p float64) float64 {
	switch {
	case k < 0:
		return 0
	case k >= n:
		return 1
	case p <= 0:
		return 1
	case p >= 1:
		return 0
	}
	if float64(k) >= float64(n)*p {
		// At or above the mean the tail is large: one minus the few
		// terms above k is exact enough and much shorter to sum.
		return max(0, 1-binomSum(k+1, n, n, p))
	}
	return min(1, binomSum(0, k, n, p))
}

// binomSum returns the sum of P(X = i) for i from lo to hi.
func binomSum(lo, hi, n int, p float64) float64 {
	lp, lq := math.Log(p), math.Log1p(-p)
	lgn, _ := math.Lgamma(float64(n + 1))
	var sum float64
	maxLog := math.Inf(-1)
	terms := make([]float64, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		lgi, _ := math.Lgamma(float64(i + 1))
		lgni, _ := math.Lgamma(float64(n - i + 1))
		t := lgn - lgi - lgni + float64(i)*lp + float64(n-i)*lq
		terms = append(terms, t)
		if t > maxLog {
			maxLog = t
		}
	}
	for _, t := range terms {
		sum += math.Exp(t - maxLog)
	}
	return math.Exp(maxLog) * sum
}

// wilsonLower returns the lower bound of the Wilson score interval for k
// successes in n trials at z standard deviations.
func wilsonLower(k, n int, z float64) float64 {
	if n == 0 {
		return 0
	}
	nf := float64(n)
	p := float64(k) / nf
	z2 := z * z
	centre := p + z2/(2*nf)
	margin := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return math.Max(0, (centre-margin)/(1+z2/nf))
}

// shrink returns the completion rate k/n pulled towards prior with the
// weight of m pseudo-handshakes: small networks sit near the prior until
// their own numbers outweigh it.
func shrink(k, n int, prior, m float64) float64 {
	return (float64(k) + m*prior) / (float64(n) + m)
}
