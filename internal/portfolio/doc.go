// Package portfolio is the buyer's portfolio optimiser: given the priced
// quotes of a campaign and its brief, it decides how much to spend on each
// quote, and explains every decision (decision 7). It is pure: no I/O, no
// clock, no randomness; the same input always gives the same plan.
//
// # Model
//
// The variables are the spend x_i on each quote, in dollars. The objective is
//
//	value = Σ score_i × x_i / 1000
//
// where score_i is the guide's score (Score, section 0 step 6: price headroom
// below a ceiling, format, negotiability and volume-discount bonuses; the
// weights are configuration). The guide's score is a per-quote rating; using
// it as the value of each thousand dollars spent turns it into a quantity that
// adds up across lines: the optimum spends the budget on the best-scored
// inventory first and moves to worse inventory only when the better is
// exhausted or capped, and a great quote with little inventory is worth only
// what it can absorb. Impressions follow from spend (impressions =
// spend × 1000 / CPM), so a cheap quote's extra impressions are already in
// its price term.
//
// It is maximised subject to
//
//	Σ x_i <= Budget                                  (hard; decision 7)
//	Σ_{i of seller s} x_i <= cap                     (risk diversification)
//	0 <= x_i <= available_i × CPM_i / 1000           (budget when unknown)
//	Σ_{i serving f} x_i >= share_f × Σ x_i           (format mix)
//	x_i = 0  or  x_i >= minImpressions_i × CPM_i/1000 (seller minimums)
//	at least MinSellers sellers with spend >= their threshold
//
// The last two are binary choices. MinSellers is dropped, with a note, when no
// plan can meet it.
//
// # Method
//
// Branch and bound on the binary choices, over LP relaxations solved exactly
// by Dantzig-Wolfe column generation:
//
//   - The budget, the seller caps and the quote bounds form a laminar family
//     (budget ⊃ sellers ⊃ quotes). Over that polytope a linear objective is
//     maximised exactly by a greedy fill (each seller's best value is concave
//     in its total; the budget goes to the steepest pieces first). That greedy
//     is the pricing oracle; it also handles forced minimums and the seller
//     count term.
//   - The rows that are not laminar (one per format share, one for the seller
//     count, plus convexity) form the restricted master LP, solved by a
//     bounded Bland-rule primal simplex on gonum's dense matrices (gonum's
//     own lp.Simplex has no pivot limit and can cycle forever on a
//     degenerate master). It has a handful of rows however many quotes there
//     are, which is what lets a dense simplex handle 10,000 quotes. Its duals price the next column; the loop stops
//     when no column improves, which is the LP optimum (and a Lagrangian bound
//     is available at every iteration to prune nodes early).
//   - An exact presolve drops quotes that can never be needed: within one
//     seller and one set of format-mix formats, once better quotes without a
//     seller minimum can absorb everything the seller may receive, the quotes
//     below them cannot improve any plan.
//   - A diving heuristic finds a first plan; best-first search then proves or
//     improves it, pruning nodes within 1e-7 (relative) of the incumbent. The
//     node count and the total column-generation work are bounded (larger
//     instances get fewer nodes); when a bound is hit, Notes give the best
//     plan's proven gap to the optimum.
//
// Without seller minimums, format mix and MinSellers the model is a
// polymatroid, where the guide's greedy (with the seller cap as its
// per-seller amount) is already optimal; the optimiser earns its keep on the
// binary choices and by honouring the mix and the seller count, which the
// greedy ignores.
//
// # Money
//
// Budgets, caps and CPMs are read as integer micro-dollars (the seller's money
// unit), never above the amount given (a CPM is never read above its quote).
// After solving, each line books floor(spend × 1000 / CPM) whole impressions,
// and the exact cost Σ impressions × CPM micros is checked in 128-bit integers
// against the budget and caps, trimming the least valuable lines if rounding
// overshot (format shares and counted sellers' thresholds are restored the
// same way); leftover budget is then topped up in whole impressions wherever
// every limit allows. A line's spend is what the seller books,
// events.CostMicros (impressions × CPM micros / 1000 rounded up to the
// micro); the few micros that rounding up can add are taken back the same way
// (fitMicros). So the booked total, in micros, never exceeds the budget.
//
// Greedy is the guide's own selection, kept as the baseline.
package portfolio
