"""Box-constrained quadratic steps (core/face/box_qp.py): the block arrow Hessian of Eq. 3 and its solver."""
import numpy as np

from core.face.box_qp import ArrowHessian, arrow_box_step, dense_box_step


def _random_arrow(rng, frames=5, per=8, shared=4) -> ArrowHessian:
    """A positive definite arrow-shaped H = J'J + small ridge, as Gauss-Newton makes it."""
    h = ArrowHessian.zeros(frames, per, shared)
    for i in range(frames):
        jf, js = rng.normal(size=(12, per)), rng.normal(size=(12, shared))
        h.frames[i] = jf.T @ jf + 1e-3 * np.eye(per)
        h.coupling[i] = jf.T @ js
        h.shared += js.T @ js
    h.shared += 1e-3 * np.eye(shared)
    return h


def _random_problems(seed: int, count: int):
    """(H, its dense matrix, g) for `count` arrow problems with a gradient large enough to push on bounds."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        h = _random_arrow(rng, frames=8, per=12, shared=6)
        yield h, h.dense(), 5.0 * rng.normal(size=len(h.diagonal())), rng


def _projected_gradient(h: np.ndarray, g, lo, hi, d) -> float:
    return float(np.linalg.norm(d - np.clip(d - (h @ d + g), lo, hi)))


def test_arrow_hessian_acts_like_its_dense_matrix():
    rng = np.random.default_rng(0)
    h = _random_arrow(rng)
    dense = h.dense()
    v = rng.normal(size=len(dense))
    assert np.allclose(dense, dense.T)
    assert np.allclose(h.matvec(v), dense @ v)
    assert np.allclose(h.diagonal(), np.diag(dense))
    assert np.allclose(h.add_diagonal(v).dense(), dense + np.diag(v))


def test_solve_free_solves_the_system_of_the_free_variables_and_zeroes_the_rest():
    rng = np.random.default_rng(1)
    h = _random_arrow(rng)
    dense = h.dense()
    free = rng.random(len(dense)) < 0.6
    rhs = rng.normal(size=len(dense))
    x = h.solve_free(rhs, free)
    assert np.all(x[~free] == 0.0)
    assert np.allclose(dense[np.ix_(free, free)] @ x[free], rhs[free])


def test_arrow_step_without_binding_bounds_is_the_newton_step():
    rng = np.random.default_rng(2)
    h = _random_arrow(rng)
    g = rng.normal(size=len(h.diagonal()))
    newton = np.linalg.solve(h.dense(), -g)
    bound = np.full(len(g), np.abs(newton).max() + 1.0)
    assert np.allclose(arrow_box_step(h, g, -bound, bound), newton)


def test_arrow_step_meets_the_optimality_conditions_when_many_bounds_bind():
    for h, dense, g, rng in _random_problems(seed=3, count=20):
        x = rng.random(len(g))                       # like expressions in [0, 1], many at zero
        x[rng.random(len(g)) < 0.5] = 0.0
        lo, hi = -x, 1.0 - x
        d = arrow_box_step(h, g, lo, hi)
        assert np.all(d >= lo) and np.all(d <= hi)
        assert np.count_nonzero((d == lo) | (d == hi)) > 0
        assert _projected_gradient(dense, g, lo, hi, d) < 1e-9 * np.abs(g).max()


def test_arrow_step_is_never_worse_than_the_dense_active_set_step():
    for h, dense, g, _ in _random_problems(seed=4, count=10):
        lo, hi = np.full(len(g), -0.2), np.full(len(g), 0.3)
        energy = lambda d: 0.5 * d @ dense @ d + g @ d  # noqa: E731
        assert energy(arrow_box_step(h, g, lo, hi)) <= energy(dense_box_step(dense, g, lo, hi)) + 1e-12
