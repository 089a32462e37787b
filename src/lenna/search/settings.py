"""The settings of the search loop, and the forms of its latency term: a module of its own, so
that the loop and the architect both import them and neither imports the other's settings."""

from __future__ import annotations

from dataclasses import dataclass

# The forms of the latency term of the alpha step (`lenna.search.architect.latency_term`).
LATENCY_FORMS = ("additive", "relative", "mul_log")


@dataclass(frozen=True)
class SearchSettings:
    """Search hyper-parameters; the defaults are those of the DARTS reference implementation."""

    epochs: int = 50
    warmup_epochs: int = 0
    batch_size: int = 64
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    grad_clip: float = 5.0
    alpha_lr: float = 3e-4
    alpha_betas: tuple[float, float] = (0.5, 0.999)
    alpha_weight_decay: float = 1e-3
    order: str = "first"
    latency_form: str = "relative"
    max_skip_normal: int | None = 2

    def __post_init__(self):
        if self.order not in ("first", "second"):
            raise ValueError(f"order: {self.order!r} is neither 'first' nor 'second'")
        if self.latency_form not in LATENCY_FORMS:
            raise ValueError(f"latency_form: {self.latency_form!r}; known: {list(LATENCY_FORMS)}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"warmup_epochs: {self.warmup_epochs} is not within 0..epochs ({self.epochs})")


def search_settings(section: dict) -> SearchSettings:
    """`SearchSettings` from the ``search`` config section (the sweep lists are ignored)."""
    keys = set(SearchSettings.__dataclass_fields__)
    settings = {k: v for k, v in section.items() if k in keys}
    if "alpha_betas" in settings:
        settings["alpha_betas"] = tuple(settings["alpha_betas"])
    return SearchSettings(**settings)
