"""Models built without validation are the models validation builds, in every respect."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from strategy_agent.models import Candle, FeatureVector, InstrumentRef
from strategy_agent.prevalidated import builder

INSTRUMENT = InstrumentRef(symbol="BTC/USDT", exchange_id="simulated", quote_ccy="USDT")


def assert_same_state(built: BaseModel, validated: BaseModel) -> None:
    assert type(built) is type(validated)
    assert built == validated
    assert list(built.__dict__.items()) == list(validated.__dict__.items())  # field order too
    assert built.model_fields_set == validated.model_fields_set
    assert type(built.model_fields_set) is set
    assert built.__pydantic_extra__ == validated.__pydantic_extra__
    assert built.__pydantic_private__ == validated.__pydantic_private__
    assert repr(built) == repr(validated)
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_copy(update={}) == validated


def test_a_built_candle_is_the_validated_candle() -> None:
    fields: dict[str, Any] = {
        "ts": 1_735_689_600_000,
        "instrument": INSTRUMENT,
        "open": 100.0,
        "high": 101.5,
        "low": 99.25,
        "close": 100.5,
        "volume": 0.0,
        "interval": "1h",
    }
    built = builder(Candle)(dict(fields))
    assert_same_state(built, Candle(**fields))
    assert_same_state(built, Candle.model_construct(**fields))
    with pytest.raises(Exception, match="frozen"):
        built.close = 3.0  # type: ignore[misc]


def test_a_built_feature_vector_is_the_validated_vector() -> None:
    fields: dict[str, Any] = {
        "ts": 3_600_000,
        "instrument": INSTRUMENT,
        "values": {"close": 100.5, "rsi_14": 48.25},
        "meta": {"interval": "1h", "candle_ts": 0, "series": {"close": [100.5]}},
    }
    assert_same_state(builder(FeatureVector)(dict(fields)), FeatureVector(**fields))


def test_each_built_model_has_its_own_fields_set() -> None:
    build = builder(FeatureVector)
    first = build({"ts": 0, "instrument": INSTRUMENT, "values": {}, "meta": None})
    second = build({"ts": 0, "instrument": INSTRUMENT, "values": {}, "meta": None})
    assert first.model_fields_set is not second.model_fields_set


class _Aliased(BaseModel):
    value: int = Field(alias="v")


class _Private(BaseModel):
    value: int
    _seen: int = PrivateAttr(default=0)


class _PostInit(BaseModel):
    value: int

    def model_post_init(self, context: Any) -> None:
        pass


class _Extra(BaseModel):
    model_config = ConfigDict(extra="allow")
    value: int


@pytest.mark.parametrize(
    ("cls", "reason"),
    [
        (_Aliased, "aliased fields"),
        (_Private, "private attributes"),
        (_PostInit, "model_post_init"),
        (_Extra, "extra fields"),
    ],
)
def test_models_the_shortcut_cannot_build_like_model_construct_are_refused(
    cls: type[BaseModel], reason: str
) -> None:
    with pytest.raises(TypeError, match=reason):
        builder(cls)
