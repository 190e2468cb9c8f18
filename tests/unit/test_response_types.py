"""bot/telegram.py KeepResponseTypes: the `Response[...]` model aiogram reads an answer with is
built once per method, not again after every garbage collection."""

from __future__ import annotations

import gc
import weakref

from aiogram.methods import GetMe, Response
from aiogram.types import User

from bot.build import make_bot
from tests.conftest import make_settings


async def test_the_model_an_answer_is_read_with_survives_garbage_collection(tg, tmp_path) -> None:
    bot = make_bot(make_settings(tg, tmp_path))
    try:
        assert (await bot(GetMe())).is_bot
        model = weakref.ref(Response[User])  # what aiogram read the answer with
        gc.collect()
        # Without a strong reference pydantic would have dropped the class here (and built a
        # new one for the next answer).
        assert model() is not None
        assert (await bot(GetMe())).is_bot
        gc.collect()
        assert model() is Response[User]
    finally:
        await bot.session.close()
