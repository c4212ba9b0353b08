"""One ``Registry`` under every family: normalised names, aliases, refusal of a taken name, one-line
descriptions, and the families (penalties, attribution methods, metrics, localisation metrics) built on it."""
from __future__ import annotations

import pytest

from explainreg.registry import Registry, UnknownNameError, first_line, normalise

pytestmark = pytest.mark.synthetic


def test_names_are_normalised_and_aliases_resolve():
    r = Registry("shape")
    square = r.register("Square-Box", object(), aliases=("quad",), description="Four sides.")
    for name in ("square-box", "SQUARE_BOX", " square_box ", "Quad"):
        assert r[name] is square and name in r and r.resolve(name) == "Square-Box"
    assert list(r) == ["Square-Box"] and len(r) == 1 and r.aliases == {"quad": "Square-Box"}
    assert r.names(with_aliases=True) == ["Square-Box", "quad"]
    assert normalise("A-b C") == "a_b c"


def test_a_taken_name_or_alias_is_refused_and_the_same_object_again_is_not():
    r = Registry("shape")

    @r.register("circle", aliases=("round",))
    def circle():
        """Round."""

    with pytest.raises(ValueError, match="shape name 'round' is already registered to .*circle"):
        r.register("disc", lambda: None, aliases=("round",))
    with pytest.raises(ValueError, match="'Circle' is already registered"):
        r.register("Circle", lambda: None)
    assert r.register("circle", circle) is circle                        # a re-import registers it again
    other = r.register("circle", lambda: None, replace=True)
    assert r["circle"] is other and "round" not in r                    # replaced with its aliases
    assert r.pop("circle") is other and "circle" not in r and len(r) == 0


def test_unknown_names_list_what_is_registered():
    r = Registry("colour", hint=" (or a hex code)")
    r.register("red", object())
    with pytest.raises(UnknownNameError, match=r"unknown colour 'blue'; available: red \(or a hex code\)"):
        r["blue"]
    with pytest.raises(KeyError):
        r.resolve("blue")
    with pytest.raises(ValueError):                                      # also a ValueError
        r.resolve("blue")
    assert r.pop("blue", None) is None


def test_descriptions_come_from_docstrings_help_or_the_given_line():
    class Thing:
        """Does things, e.g. this. Then more."""

    class Helped:
        help = "a line of help"

    r = Registry("thing")
    r.register("thing", Thing)
    r.register("helped", Helped)
    r.register("told", object(), description="Told.")
    assert r.describe() == {"thing": "Does things, e.g. this.", "helped": "a line of help", "told": "Told."}
    assert r.table(8).splitlines()[0] == "thing    Does things, e.g. this."
    assert first_line(object) == "The base class of the class hierarchy."


def test_every_family_is_a_registry_that_lists_and_finds_each_name():
    from explainreg.attribution import ATTRIBUTION_METHODS
    from explainreg.metrics import LOCALISATION_METRICS, METRICS
    from explainreg.penalties import PENALTIES, build_penalty

    for family in (PENALTIES, ATTRIBUTION_METHODS, METRICS, LOCALISATION_METRICS):
        assert isinstance(family, Registry)
        for name in family.names(with_aliases=True):
            assert family[name] is family[family.resolve(name)]
        assert all(family.describe().values()), [n for n, d in family.describe().items() if not d]
    assert type(build_penalty("TV")).__name__ == "Smoothness" and METRICS["Gauss"].__name__ == "GaussianNoise"
    assert ATTRIBUTION_METHODS["IG"].name == "integrated_gradients"
