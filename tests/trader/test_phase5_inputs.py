"""The Phase 5 input comparison computes both feature forms on the same states."""

from __future__ import annotations

import numpy as np

from stratforge.trader.markets.synthetic import SyntheticConfig
from stratforge.trader.phase5_inputs import DIFFERING, measure, summarize


def test_reference_forms_differ_only_where_documented() -> None:
    cmp = measure(range(5, 6), SyntheticConfig(assets=("ETH",), warmup_minutes=15))
    assert cmp.ours.shape == cmp.reference.shape == (180, 18) and cmp.history_ours.shape == (180, 90)
    same = [j for j in range(18) if j not in DIFFERING]
    assert np.array_equal(cmp.ours[:, same], cmp.reference[:, same])
    held = cmp.ours[:, 12] == 1
    # feature 14: ROI vs dollars / 50 on a 10 USDC position: the reference form is cost/50 = 0.2 of ours
    assert np.allclose(cmp.reference[held, 14], 0.2 * cmp.ours[held, 14], atol=1e-5)
    assert set(np.unique(cmp.reference[:, 9])) <= {0.0, 1.0}  # the reference flag is binary
    np.testing.assert_array_equal(cmp.history_ours.reshape(180, 5, 18)[1:, -1], cmp.ours[1:])

    class Sign:
        def action_probs(self, f, h):  # noqa: ANN001, ANN201 - a policy that reads feature 14 only
            p = np.zeros((len(f), 3))
            p[np.arange(len(f)), np.where(f[:, 14] > 0.3, 2, 0)] = 1
            return p

    res = summarize(cmp, Sign())
    assert res["argmax_agreement_one_feature"][5] == 1.0  # feature 5 does not matter to it
    assert res["argmax_agreement_one_feature"][14] == res["argmax_agreement"] < 1.0
