"""In-process generation: ``GenerationModule`` under a Lightning ``Trainer.predict``.

Devices, accelerator and precision are configuration. Requests whose answer is cached are skipped
(``DispatchingEngine``), and a prediction writer hands every finished batch on to be cached at once.
"""

from __future__ import annotations

from typing import Callable

from safetune.cache import Cache
from safetune.components.engines.base import ModelEngine, engine_info, generation_key
from safetune.components.requests import Generation, GenerationRequest, chat_template_source, load_tokenizer
from safetune.errors import SafetuneError
from safetune.models import ModelRef


class TransformersEngine(ModelEngine):
    """In-process generation, each finished batch delivered (cached, counted) as soon as it is done."""

    def __init__(self, ref: ModelRef, cache: Cache | None = None, **settings):
        super().__init__(ref, cache, **settings)
        self.trainer_kwargs = dict(accelerator=self.accelerator, devices=self.devices, precision=self.precision)
        self._tokenizer = None  # loaded on the first cache miss, like the model
        self._info = engine_info(ref, chat_template_source(ref.path), self.dtype)
        self._module = None  # GenerationModule, loaded on the first cache miss

    @property
    def module(self):
        """The GenerationModule, loaded when first needed: a search answered from the cache never loads it."""
        if self._module is None:
            from safetune.components.generation import GenerationModule, load_model

            self._module = GenerationModule(load_model(self.ref.path, self.dtype), self.tokenizer,
                                            self.ref.chat_template_kwargs)
        return self._module

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.ref.path)
        return self._tokenizer

    def info(self) -> dict:
        return dict(self._info)

    def key(self, request: GenerationRequest) -> str:
        return generation_key(self.info(), request)

    def _dispatch(self, unique: list[GenerationRequest], deliver: Callable[[list[Generation]], None]) -> None:
        import lightning as L

        from safetune.components.datamodule import PromptDataModule
        from safetune.components.engines.writer import DeliveringWriter
        from safetune.components.predict import predict, quiet_lightning

        quiet_lightning()
        trainer = L.Trainer(
            **self.trainer_kwargs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[DeliveringWriter(deliver)],
        )
        batches = predict(trainer, self.module, datamodule=PromptDataModule(unique, self.batch_size),
                          return_predictions=True)
        if batches is None:
            raise SafetuneError("generation returned nothing (multi-device predict must run in a subprocess)")
