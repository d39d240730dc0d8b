"""The functions of the recipes in examples/, against references computed here independently."""

import functools
import importlib.util
import math
import pathlib

import mpmath
import numpy as np
import pytest
import scipy.linalg
import scipy.stats

import lsearray
from reference import (hmm_path_enumeration, kalman_model_moments, mp_cross_entropy, mp_ising_chain, mp_log,
                       mp_logaddexp)

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"


@functools.cache
def recipe(name):
    """Import examples/<name>.py as a module."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------------
# HMM forward-backward


def _random_hmm(rng, K, M):
    return rng.dirichlet(np.ones(K)), rng.dirichlet(np.ones(K), size=K), rng.dirichlet(np.ones(M), size=K)


def test_hmm_likelihood_and_marginals_match_path_enumeration():
    hmm = recipe("hmm_forward")
    rng = np.random.default_rng(0)
    pi, A, B = _random_hmm(rng, 3, 4)
    obs = rng.integers(0, 4, size=(3, 6))
    ours = hmm.log_likelihood(np.log(pi), np.log(A), np.log(B), obs)
    gamma = hmm.posterior_marginals(np.log(pi), np.log(A), np.log(B), obs)
    assert ours.shape == (3,) and gamma.shape == (3, 6, 3)
    for s in range(3):
        total, marginals = hmm_path_enumeration(pi, A, B, obs[s])
        # 3**6 paths summed in float64: the log differs by a few ulp of its magnitude (~10).
        assert ours[s] == pytest.approx(math.log(total), rel=1e-13)
        np.testing.assert_allclose(gamma[s], marginals, rtol=1e-12, atol=1e-15)


def test_hmm_zero_probabilities_stay_finite_where_they_should():
    """A transition of probability 0 (log -inf) removes paths; it must not make nan."""
    hmm = recipe("hmm_forward")
    pi, B = np.array([1.0, 0.0]), np.array([[0.7, 0.3], [0.2, 0.8]])
    A = np.array([[0.6, 0.4], [0.0, 1.0]])
    obs = np.array([0, 1, 1, 0, 1])
    with np.errstate(divide="ignore"):
        logs = np.log(pi), np.log(A), np.log(B)
    total, marginals = hmm_path_enumeration(pi, A, B, obs)
    assert hmm.log_likelihood(*logs, obs)[0] == pytest.approx(math.log(total), rel=1e-13)
    np.testing.assert_allclose(hmm.posterior_marginals(*logs, obs)[0], marginals, rtol=1e-12, atol=1e-15)


def test_hmm_long_sequence_matches_mpmath_forward():
    """400 steps: the probability-space forward in mpmath (no underflow) is the reference."""
    hmm = recipe("hmm_forward")
    rng = np.random.default_rng(1)
    pi, A, B = _random_hmm(rng, 3, 4)
    obs = rng.integers(0, 4, 400)
    with mpmath.workdps(30):
        Am, Bm = mpmath.matrix(A.tolist()), mpmath.matrix(B.tolist())
        alpha = [mpmath.mpf(pi[k]) * Bm[k, obs[0]] for k in range(3)]
        for o in obs[1:]:
            alpha = [mpmath.fsum(alpha[i] * Am[i, j] for i in range(3)) * Bm[j, o] for j in range(3)]
        reference = mp_log(mpmath.fsum(alpha))
    assert reference < -500
    # 400 steps of rounding relative to a log-likelihood of magnitude ~500.
    assert hmm.log_likelihood(np.log(pi), np.log(A), np.log(B), obs)[0] == pytest.approx(reference, rel=1e-12)


# ---------------------------------------------------------------------------------------------------
# Particle filter


def test_kalman_filter_matches_the_joint_gaussian():
    pf = recipe("particle_filter")
    y = pf.simulate(30, np.random.default_rng(2))
    cov_x, cov_y = kalman_model_moments(pf, 30)
    result = pf.kalman_filter(y)
    assert result.log_likelihood == pytest.approx(
        scipy.stats.multivariate_normal(np.zeros(30), cov_y).logpdf(y), rel=1e-12)
    # The filtered mean at t is E[x_t | y_1..t], a Gaussian conditional on the first t+1 observations.
    for t in (0, 9, 29):
        k = t + 1
        expected = cov_x[t, :k] @ np.linalg.solve(cov_y[:k, :k], y[:k])
        assert result.means[t] == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_effective_sample_size_matches_direct_formula():
    pf = recipe("particle_filter")
    raw = np.random.default_rng(3).normal(0.0, 2.0, 500) - 1000.0  # exp underflows without the log
    with mpmath.workdps(40):
        weights = [mpmath.exp(mpmath.mpf(v)) for v in raw]
        total = mpmath.fsum(weights)
        normalized_log = np.array([float(mpmath.log(w / total)) for w in weights])
        expected = float(1 / mpmath.fsum((w / total) ** 2 for w in weights))
    assert pf.effective_sample_size(normalized_log) == pytest.approx(expected, rel=1e-12)
    assert pf.effective_sample_size(np.full(10, -math.log(10))) == pytest.approx(10.0, rel=1e-14)


def test_systematic_resampling_matches_the_probability_space_algorithm():
    pf = recipe("particle_filter")
    w = np.random.default_rng(4).dirichlet(np.full(300, 0.3))
    ours = pf.systematic_resample(np.log(w), np.random.default_rng(5))
    u = np.random.default_rng(5).uniform()
    expected = np.minimum(np.searchsorted(np.cumsum(w), (np.arange(300) + u) / 300), 299)
    assert ours.dtype.kind == "i"
    # A point can land within rounding of a cumulative weight; then the two may pick neighbours.
    assert np.mean(ours == expected) > 0.99 and np.all(np.abs(ours - expected) <= 1)


def test_particle_filter_estimates_the_exact_likelihood():
    pf = recipe("particle_filter")
    y = pf.simulate(100, np.random.default_rng(11))
    _, cov_y = kalman_model_moments(pf, 100)
    exact = scipy.stats.multivariate_normal(np.zeros(100), cov_y).logpdf(y)
    estimate = pf.particle_filter(y, 2000, np.random.default_rng(12))
    # The estimate's standard deviation over seeds is about 0.16 here (N = 2000, T = 100): 5 sd.
    assert abs(estimate.log_likelihood - exact) < 0.8
    assert estimate.per_step.shape == (100,) and np.all((estimate.per_step > 1) & (estimate.per_step <= 2000))


# ---------------------------------------------------------------------------------------------------
# Bayesian model averaging


def _regression_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    return x, 0.5 - x + 0.8 * x**3 + rng.normal(0, 1, n)


def test_log_evidence_is_the_gaussian_marginal_density():
    ma = recipe("model_averaging")
    x, y = _regression_data(60, 20)
    for degree in range(4):
        Phi = np.vander(x, degree + 1, increasing=True)
        cov = ma.SIGMA2 * np.eye(60) + Phi @ Phi.T / ma.ALPHA
        expected = scipy.stats.multivariate_normal(np.zeros(60), cov).logpdf(y)
        assert ma.log_evidence(x, y, degree) == pytest.approx(expected, rel=1e-12)


def test_log_predictive_is_the_gaussian_conditional():
    ma = recipe("model_averaging")
    x, y = _regression_data(40, 21)
    x_new, y_new = 0.3, 0.1
    xs = np.append(x, x_new)
    for degree in range(3):
        Phi = np.vander(xs, degree + 1, increasing=True)
        joint = ma.SIGMA2 * np.eye(41) + Phi @ Phi.T / ma.ALPHA
        mean = joint[-1, :-1] @ np.linalg.solve(joint[:-1, :-1], y)
        var = joint[-1, -1] - joint[-1, :-1] @ np.linalg.solve(joint[:-1, :-1], joint[:-1, -1])
        expected = scipy.stats.norm(mean, math.sqrt(var)).logpdf(y_new)
        assert ma.log_predictive(x, y, degree, x_new, y_new) == pytest.approx(expected, rel=1e-10)


def test_model_weights_and_averages_match_mpmath_on_underflowing_evidences():
    ma = recipe("model_averaging")
    log_ev = np.array([-2961.86, -2892.17, -2894.77, -2884.44, -2883.45, -2883.44])
    prior = np.array([0.3, 0.2, 0.2, 0.1, 0.1, 0.1])
    log_pred = np.array([-3.0, -1.5, -1.2, -0.9, -0.95, -1.0])
    with mpmath.workdps(40):
        joint = [mpmath.mpf(p) * mpmath.exp(mpmath.mpf(e)) for p, e in zip(prior, log_ev)]
        total = mpmath.fsum(joint)
        weights = [j / total for j in joint]
        expected_weights = np.array([float(w) for w in weights])
        expected_log_z = float(mpmath.log(total))
        expected_avg = float(mpmath.log(mpmath.fsum(w * mpmath.exp(lp) for w, lp in zip(weights, log_pred))))
    # Weights span 1e-34..0.5 and are compared relatively: each is exp of a difference of numbers near
    # -2900, rounded to ulp(2900) = 4.5e-13 once or twice, so a relative error of about 1e-12.
    np.testing.assert_allclose(ma.model_weights(log_ev, prior), expected_weights, rtol=3e-12)
    assert ma.log_marginal_likelihood(log_ev, prior) == pytest.approx(expected_log_z, rel=1e-15)
    assert ma.averaged_log_predictive(log_ev, prior, log_pred) == pytest.approx(expected_avg, rel=1e-13)


# ---------------------------------------------------------------------------------------------------
# Stepping-stone sampling


def test_closed_form_evidence_is_the_marginal_gaussian_density():
    ss = recipe("stepping_stone")
    y = np.random.default_rng(30).normal(0.7, 1.0, (25, 3))
    cov = ss.SIGMA2 * np.eye(25) + ss.S0**2 * np.ones((25, 25))
    expected = sum(scipy.stats.multivariate_normal(np.full(25, ss.M0), cov).logpdf(y[:, k]) for k in range(3))
    assert ss.closed_form_log_evidence(y) == pytest.approx(expected, rel=1e-12)


def test_log_likelihood_matches_scipy():
    ss = recipe("stepping_stone")
    rng = np.random.default_rng(31)
    y, mu = rng.normal(size=(20, 3)), rng.normal(size=(4, 5, 3))
    expected = scipy.stats.norm(mu[..., None, :], math.sqrt(ss.SIGMA2)).logpdf(y).sum(axis=(-2, -1))
    np.testing.assert_allclose(ss.log_likelihood(mu, y), expected, rtol=1e-12)


def test_power_posterior_is_the_normalized_tempered_density():
    """log(L**beta prior) minus the returned normal's log density is constant in mu (1-D slices)."""
    ss = recipe("stepping_stone")
    rng = np.random.default_rng(32)
    y = rng.normal(1.0, 1.0, (15, 2))
    betas = np.array([0.0, 0.01, 0.5, 1.0])
    mean, sd = ss.power_posterior(betas, y)
    grid = np.linspace(-2, 3, 7)
    for k, beta in enumerate(betas):
        for d in range(2):
            log_lik = scipy.stats.norm(grid[:, None], math.sqrt(ss.SIGMA2)).logpdf(y[:, d]).sum(axis=1)
            log_target = beta * log_lik + scipy.stats.norm(ss.M0, ss.S0).logpdf(grid)
            gap = log_target - scipy.stats.norm(mean[k, d], sd[k, 0]).logpdf(grid)
            np.testing.assert_allclose(gap, gap[0], atol=1e-9)


def test_stepping_stone_estimate_and_stream_splits():
    ss = recipe("stepping_stone")
    y = np.random.default_rng(33).normal(ss.TRUE_MEAN, 1.0, (100, 5))
    betas = ss.schedule(32)
    assert betas[0] == 0 and betas[-1] == 1 and np.all(np.diff(betas) > 0)
    two_chains = ss.stepping_stone(y, betas, 2, 8, 1000, np.random.default_rng(34))
    # The estimate's standard deviation over seeds is about 0.018: 5 sd.
    assert abs(two_chains - ss.closed_form_log_evidence(y)) < 0.09
    # The same draws streamed as one chain of 16 batches: only the merge order differs.
    one_chain = ss.stepping_stone(y, betas, 1, 16, 1000, np.random.default_rng(34))
    assert one_chain == pytest.approx(two_chains, rel=1e-14)


# ---------------------------------------------------------------------------------------------------
# Felsenstein pruning


def test_jukes_cantor_is_the_matrix_exponential_of_the_rate_matrix():
    fp = recipe("felsenstein_pruning")
    Q = (np.ones((4, 4)) - 4 * np.eye(4)) / 3
    for t in (1e-9, 0.05, 0.7, 5.0):
        np.testing.assert_allclose(fp.jukes_cantor(t), scipy.linalg.expm(Q * t), rtol=1e-13, atol=1e-16)


def test_pruning_matches_explicit_sum_over_ancestral_states():
    """((a:0.2,b:0.1):0.3,(c:0.05,d:0.4):0.15); summed over the 4**3 internal assignments by einsum."""
    fp = recipe("felsenstein_pruning")
    tree = (((("a", 0.2), ("b", 0.1)), 0.3), ((("c", 0.05), ("d", 0.4)), 0.15))
    alignment = {"a": "ACGTTA-", "b": "ACGATTC", "c": "GCGTAT-", "d": "ATCTAAA"}
    P = {t: fp.jukes_cantor(t) for t in (0.2, 0.1, 0.3, 0.05, 0.4, 0.15)}

    def leaf(seq):  # (sites, 4) indicator; a gap is every base
        return np.array([[1.0] * 4 if ch == "-" else [float(ch == b) for b in "ACGT"] for ch in seq])

    la, lb, lc, ld = (leaf(alignment[k]) for k in "abcd")
    # root r -> u (0.3) -> a (0.2), b (0.1);  root r -> v (0.15) -> c (0.05), d (0.4)
    expected = np.einsum("r,ru,ua,ub,rv,vc,vd,sa,sb,sc,sd->s", np.full(4, 0.25), P[0.3], P[0.2], P[0.1],
                         P[0.15], P[0.05], P[0.4], la, lb, lc, ld)
    np.testing.assert_allclose(fp.site_log_likelihoods(tree, alignment), np.log(expected), rtol=1e-13)
    assert fp.log_likelihood(tree, alignment) == pytest.approx(np.log(expected).sum(), rel=1e-13)


def test_pruning_on_a_large_tree_matches_mpmath():
    """256 leaves with long branches: site likelihoods near e**-500, from mpmath's pruning."""
    fp = recipe("felsenstein_pruning")
    tree = fp.balanced_tree(256, 1.0)
    alignment = fp.simulate(tree, 3, np.random.default_rng(40))
    assert len(alignment) == 256 and all(len(s) == 3 and set(s) <= set("ACGT") for s in alignment.values())

    with mpmath.workdps(30):
        P = mpmath.matrix(fp.jukes_cantor(1.0).tolist())

        def prune(node, site):
            if isinstance(node, str):
                return [mpmath.mpf(alignment[node][site] == b) for b in "ACGT"]
            out = [mpmath.mpf(1)] * 4
            for child, _ in node:
                c = prune(child, site)
                out = [out[i] * mpmath.fsum(P[i, j] * c[j] for j in range(4)) for i in range(4)]
            return out

        expected = [mp_log(mpmath.fsum(prune(tree, s)) / 4) for s in range(3)]
    assert max(expected) < -300
    np.testing.assert_allclose(fp.site_log_likelihoods(tree, alignment), expected, rtol=1e-12)


# ---------------------------------------------------------------------------------------------------
# Ising chain


@pytest.mark.parametrize("n, J, h, kT", [(10, 1.0, 0.3, 1.5), (9, -1.0, 0.2, 0.7), (8, 0.5, -0.4, 0.1),
                                        (1, 1.0, 0.5, 1.0), (2, 1.0, 0.0, 2.0)])
def test_ising_matches_mpmath_enumeration(n, J, h, kT):
    ic = recipe("ising_chain")
    log_z, m = mp_ising_chain(n, J, h, kT)
    # log Z up to ~50 in magnitude from a handful of rounded operations.
    assert ic.transfer_log_partition_function(n, J, h, kT) == pytest.approx(log_z, rel=1e-13, abs=1e-13)
    assert ic.enumeration_free_energy(n, J, h, kT) == pytest.approx(-kT * log_z, rel=1e-13, abs=1e-13)
    assert ic.free_energy_per_spin(log_z, n, kT) == pytest.approx(-kT * log_z / n, rel=1e-15)
    assert ic.enumeration_magnetization(n, J, h, kT) == pytest.approx(m, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("J", [1.0, -1.0])
def test_ising_long_cold_chain_matches_mpmath_matrix_power(J):
    ic = recipe("ising_chain")
    n, h, kT = 501, 0.01, 0.25
    with mpmath.workdps(30):
        T = mpmath.matrix([[mpmath.exp((J * a * b + h * (a + b) / 2) / mpmath.mpf(kT)) for b in (1, -1)]
                           for a in (1, -1)])
        expected = mp_log(sum((T**n)[i, i] for i in range(2)))
    assert expected > 1500  # Z overflows float64
    assert ic.transfer_log_partition_function(n, J, h, kT) == pytest.approx(expected, rel=1e-13)


def test_log_matrix_power_matches_mpmath():
    ic = recipe("ising_chain")
    log_m = np.random.default_rng(50).normal(0.0, 3.0, (3, 3))
    for n in (0, 1, 2, 5, 13):
        with mpmath.workdps(30):
            power = mpmath.matrix([[mpmath.exp(mpmath.mpf(v)) for v in row] for row in log_m]) ** n
            expected = np.array([[mp_log(power[i, j]) if power[i, j] else -np.inf for j in range(3)]
                                 for i in range(3)])
        np.testing.assert_allclose(ic.log_matrix_power(log_m, n), expected, rtol=1e-13, atol=1e-13)


# ---------------------------------------------------------------------------------------------------
# Gumbel boxes


@pytest.mark.parametrize("x, y, beta", [(100.0, 100.5, 0.1), (1.0, 1.0, 1.0), (-3.0, 2.0, 0.01),
                                        (7.0, -7.0, 50.0), (1e4, 1e4 - 1e-3, 1e-3), (0.0, -800.0, 1.0)])
def test_lse_beta_matches_mpmath(x, y, beta):
    gb = recipe("gumbel_boxes")
    expected = float(mp_logaddexp(x, y, beta))
    assert abs(float(gb.lse_beta(x, y, beta)) - expected) <= 2 * math.ulp(expected)


def test_intersection_locations_match_mpmath_and_tend_to_max_and_min():
    gb = recipe("gumbel_boxes")
    a = gb.Box(np.array([0.0, 1.0, -2.0]), np.array([2.0, 3.0, 0.5]))
    b = gb.Box(np.array([0.5, 0.2, -2.0]), np.array([2.5, 2.2, 4.0]))
    for beta in (1.0, 0.3):
        cap = gb.intersection(a, b, beta)
        np.testing.assert_allclose(cap.z, [float(mp_logaddexp(p, q, beta)) for p, q in zip(a.z, b.z)],
                                   rtol=1e-15)
        np.testing.assert_allclose(cap.Z, [-float(mp_logaddexp(-p, -q, beta)) for p, q in zip(a.Z, b.Z)], rtol=1e-15)
    cold = gb.intersection(a, b, 1e-4)
    # As beta -> 0: max of the lower corners, min of the upper ones (exact ties move by beta log 2).
    np.testing.assert_allclose(cold.z, np.maximum(a.z, b.z) + [0, 0, 1e-4 * math.log(2)], atol=1e-15)
    np.testing.assert_allclose(cold.Z, np.minimum(a.Z, b.Z), atol=1e-15)


def test_gumbel_helpers_match_scipy():
    gb = recipe("gumbel_boxes")
    x = np.linspace(-3, 5, 41)
    np.testing.assert_allclose(gb.gumbel_cdf(x, 0.7, 0.4), scipy.stats.gumbel_r(0.7, 0.4).cdf(x), rtol=1e-13)
    np.testing.assert_allclose(gb.min_gumbel_cdf(x, 0.7, 0.4), scipy.stats.gumbel_l(0.7, 0.4).cdf(x),
                               rtol=1e-13, atol=1e-300)
    samples = scipy.stats.gumbel_r(0.7, 0.4).rvs(2000, random_state=np.random.default_rng(60))
    expected_ks = scipy.stats.kstest(samples, scipy.stats.gumbel_r(0.7, 0.4).cdf).statistic
    assert gb.ks_distance(samples, gb.gumbel_cdf(samples, 0.7, 0.4)) == pytest.approx(expected_ks, rel=1e-12)
    # The closed-form maximum-likelihood location against scipy's numerical fit (optimizer tolerance).
    loc, _ = scipy.stats.gumbel_r.fit(samples, fscale=0.4)
    assert gb.location_estimate(samples, 0.4) == pytest.approx(loc, abs=1e-5)


def test_max_stability_of_sampled_corners():
    """The intersected corners of sampled boxes follow the predicted Gumbel laws (scipy's KS test)."""
    gb = recipe("gumbel_boxes")
    beta = 0.5
    a = gb.Box(np.array([0.0, 3.0]), np.array([1.0, 4.0]))
    b = gb.Box(np.array([0.4, 1.0]), np.array([2.0, 3.5]))
    rng = np.random.default_rng(61)
    sa, sb = gb.sample_corners(a, beta, 20000, rng), gb.sample_corners(b, beta, 20000, rng)
    assert sa.z.shape == sa.Z.shape == (20000, 2)
    lower, upper = np.maximum(sa.z, sb.z), np.minimum(sa.Z, sb.Z)
    for d in range(2):
        lo, hi = float(mp_logaddexp(a.z[d], b.z[d], beta)), -float(mp_logaddexp(-a.Z[d], -b.Z[d], beta))
        # Fixed seed; under the theorem a p-value below 1e-3 happens once in a thousand seeds.
        assert scipy.stats.kstest(lower[:, d], scipy.stats.gumbel_r(lo, beta).cdf).pvalue > 1e-3
        assert scipy.stats.kstest(upper[:, d], scipy.stats.gumbel_l(hi, beta).cdf).pvalue > 1e-3


# ---------------------------------------------------------------------------------------------------
# Contrastive losses


@pytest.mark.parametrize("scale, tau", [(1.0, 1.0), (3.0, 0.5), (1e4, 1.0), (1.0, 1e-3), (300.0, 0.01)])
def test_cross_entropy_matches_mpmath(scale, tau):
    ce = recipe("contrastive_losses")
    rng = np.random.default_rng(70)
    logits, labels = rng.normal(0.0, scale, (6, 5)), rng.integers(0, 5, 6)
    # A loss of magnitude up to 1e6 is a difference of terms of that size: a few ulp of them.
    assert ce.cross_entropy(logits, labels, tau) == pytest.approx(mp_cross_entropy(logits, labels, tau),
                                                                  rel=1e-13)


def test_cross_entropy_and_its_gradient_match_torch_autograd():
    torch = pytest.importorskip("torch")
    ce = recipe("contrastive_losses")
    rng = np.random.default_rng(71)
    logits, labels = rng.normal(0.0, 4.0, (16, 7)), rng.integers(0, 7, 16)
    for tau in (1.0, 0.2):
        z = torch.tensor(logits, requires_grad=True)
        loss = torch.nn.functional.cross_entropy(z / tau, torch.tensor(labels))
        loss.backward()
        assert ce.cross_entropy(logits, labels, tau) == pytest.approx(loss.item(), rel=1e-13)
        np.testing.assert_allclose(ce.cross_entropy_grad(logits, labels, tau), z.grad.numpy(),
                                   rtol=1e-11, atol=1e-15)


def test_info_nce_matches_mpmath():
    ce = recipe("contrastive_losses")
    rng = np.random.default_rng(72)
    u = rng.normal(size=(12, 4))
    v = u + rng.normal(size=u.shape)
    cos = np.array([[float(np.dot(a, b)) / math.hypot(*a) / math.hypot(*b) for b in v] for a in u])
    np.testing.assert_allclose(ce.similarities(u, v), cos, rtol=1e-13)
    labels = np.arange(12)
    for tau in (0.5, 0.01):
        rows, cols = mp_cross_entropy(cos, labels, tau), mp_cross_entropy(cos.T, labels, tau)
        assert ce.info_nce(u, v, tau, symmetric=False) == pytest.approx(rows, rel=1e-12)
        assert ce.info_nce(u, v, tau) == pytest.approx((rows + cols) / 2, rel=1e-12)


# ---------------------------------------------------------------------------------------------------
# Each script's own check can fail: with one lsearray function made slightly wrong, main() returns 1.


def _shifted(function, delta):
    @functools.wraps(function)
    def wrong(*args, **kwargs):
        return function(*args, **kwargs) + delta
    return wrong


@pytest.mark.parametrize("name, target, delta", [
    ("hmm_forward", "logmatmulexp", 1e-9),
    ("particle_filter", "logsumexp", 0.02),  # 100 steps: 2 nats against a tolerance of 0.8
    ("model_averaging", "logsumexp", 1e-6),
    ("felsenstein_pruning", "logmatmulexp", 1e-9),
    ("ising_chain", "logmatmulexp", 1e-9),
    ("gumbel_boxes", "logaddexp", 1e-9),
    ("contrastive_losses", "logsumexp", 1e-9),
])
def test_main_reports_a_disagreement(name, target, delta, monkeypatch, capsys):
    module = recipe(name)
    monkeypatch.setattr(lsearray, target, _shifted(getattr(lsearray, target), delta))
    assert module.main() == 1
    assert "DISAGREES with" in capsys.readouterr().out


def test_stepping_stone_main_reports_a_disagreement(monkeypatch, capsys):
    module = recipe("stepping_stone")
    # 32 stones, each log-mean off by 0.01: 0.32 against a tolerance of 0.09.
    monkeypatch.setattr(lsearray.OnlineLogSumExp, "result", _shifted(lsearray.OnlineLogSumExp.result, 0.01))
    assert module.main() == 1
    assert "DISAGREES with" in capsys.readouterr().out
