"""Playing a model service: sample from the trained demo models and log every generation over the real REST API.

The site runs in this process on a free loopback port (Django's threaded WSGI server), and the generations go
to ``POST /api/v1/generations/`` over HTTP with a model-service API key (``Authorization: Bearer``), in batches,
exactly as an outside service would send them. Each generation has a stable ``external_id``, so a second run
asks the database which ones are logged and sends only the others (none); the API would answer a replay
with ``existing`` anyway.

Some generations are near-copies of specific training works (a passage with a few words changed, a digit with
a little noise): the nightly attribution should credit those works, and copy detection flags them.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings

from attribution.models import AIModel, Generation, ManifestEntry, ModelVersion
from demo.corpus import DIGIT_PNG_SCALE, DIGIT_WORDS
from demo.services.models import STORYTELLER, ModelOutcome, demo_checkpoint_load

ACTOR = "command:demo"
BATCH = 50
EXTERNAL_PREFIX = "demo-"
Say = Callable[[str], None]


@dataclass(frozen=True)
class TrafficSize:
    days: int  # the traffic is spread over this many consecutive days, the last one yesterday
    generations: int  # per model, over all the days
    copy_every: int  # every n-th generation is a near-copy of a training work
    text_cents: tuple[int, int]  # revenue of one generation, low and high
    image_cents: tuple[int, int]

    def day_of(self, i: int) -> int:
        """Which of the days generation ``i`` belongs to (consecutive blocks, the last days fuller)."""
        return i * self.days // self.generations


# A few hundred generations over a week (so the earnings chart has a week of bars); the quick traffic is dearer
# per generation so that its few dozen still pay every onboarded contributor more than the payout threshold.
FULL_TRAFFIC = TrafficSize(days=7, generations=160, copy_every=8, text_cents=(5, 150), image_cents=(10, 200))
QUICK_TRAFFIC = TrafficSize(days=2, generations=16, copy_every=4, text_cents=(200, 600), image_cents=(200, 600))


def traffic_size(*, quick: bool) -> TrafficSize:
    return QUICK_TRAFFIC if quick else FULL_TRAFFIC


@dataclass(frozen=True)
class PlannedGeneration:
    external_id: str
    prompt: str
    revenue: str
    generated_at: dt.datetime
    metadata: dict[str, Any]
    output_text: str | None = None
    output_png: bytes | None = None

    def as_json(self, *, version_ref: str) -> dict[str, Any]:
        item: dict[str, Any] = {
            "model_version": version_ref, "external_id": self.external_id, "prompt": self.prompt,
            "revenue": self.revenue, "currency": settings.ROYALTIES_CURRENCY,
            "generated_at": self.generated_at.isoformat().replace("+00:00", "Z"), "metadata": self.metadata,
        }
        if self.output_png is not None:
            item["output_media"] = {"mime_type": "image/png",
                                    "content_base64": base64.b64encode(self.output_png).decode("ascii")}
        else:
            item["output_text"] = self.output_text or ""
        return item


# --- the days ---------------------------------------------------------------------------------------------


def demo_days(*, model_names: list[str], quick: bool) -> list[dt.date]:
    """The days the demo's generations happen on: ending yesterday (UTC) on the first run; on later runs the
    same days, found from the generations already logged, so a run on a later day adds no new traffic."""
    first = (
        Generation.objects.filter(model_version__ai_model__name__in=model_names)
        .filter(external_id__startswith=EXTERNAL_PREFIX)
        .order_by("generated_at").values_list("generated_at", flat=True).first()
    )
    count = traffic_size(quick=quick).days
    if first is not None:
        start = first.astimezone(dt.UTC).date()
    else:
        start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=count)
    return [start + dt.timedelta(days=n) for n in range(count)]


# --- the API key ------------------------------------------------------------------------------------------


def _key_file() -> Path:
    return Path(settings.DATA_DIR) / "demo" / "model-service-keys.json"


def demo_api_key(*, ai_model: AIModel, say: Say) -> str:
    """The model service's key for ``ai_model``: the one it kept from an earlier run if still valid, else new.

    A service keeps its key in its own configuration (the platform stores only a hash); the demo keeps it in
    ``<data dir>/demo/model-service-keys.json``, readable by its owner only.
    """
    from attribution.services.api_keys import ApiKeyInvalid, api_key_authenticate, api_key_create

    path = _key_file()
    kept = json.loads(path.read_text()) if path.is_file() else {}
    secret = kept.get(ai_model.name)
    if secret:
        try:
            api_key = api_key_authenticate(key=secret)
        except ApiKeyInvalid:
            api_key = None
        if api_key is not None and api_key.ai_model_id == ai_model.pk:
            return secret
    created = api_key_create(name=f"{ai_model.name} demo service", ai_model=ai_model, actor_label=ACTOR)
    kept[ai_model.name] = created.secret
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(kept, indent=2))
    os.chmod(path, 0o600)
    say(f"  API key {created.api_key.prefix} created for every version of {ai_model.name}")
    return created.secret


# --- planning generations ---------------------------------------------------------------------------------


def _manifest_works(version: ModelVersion) -> list[Any]:
    entries = ManifestEntry.objects.filter(model_version=version).select_related("work").order_by("work_id")
    return [e.work for e in entries]


def _moment(days: list[dt.date], size: TrafficSize, i: int, offset_minutes: int) -> dt.datetime:
    """When generation ``i`` happened: spread evenly over its day, never past 23:45 UTC."""
    which = size.day_of(i)
    block = [j for j in range(size.generations) if size.day_of(j) == which]
    start = dt.datetime.combine(days[which], dt.time(0, 0), tzinfo=dt.UTC)
    seconds = int((block.index(i) + 0.5) * (86_400 - 1_800) / len(block)) + offset_minutes * 60
    return start + dt.timedelta(seconds=seconds)


def _revenue(rng: random.Random, low_cents: int, high_cents: int) -> str:
    micros = rng.randint(low_cents * 10_000, high_cents * 10_000) // 100 * 100  # four decimals
    return str(Decimal(micros) / Decimal(1_000_000))


def _edit_words(text: str, rng: random.Random, *, words: int, edits: int) -> str:
    """The first ``words`` words of ``text`` with ``edits`` of them replaced: a near-copy, not verbatim."""
    tokens = text.split()[:words]
    for _ in range(min(edits, len(tokens))):
        spot = rng.randrange(len(tokens))
        tokens[spot] = rng.choice(["indeed", "also", "truly", "the", "quite", "a"])
    return " ".join(tokens)


def _plan_text(version: ModelVersion, model: Any, size: TrafficSize, days: list[dt.date], missing: set[str]) -> list:
    works = [w for w in _manifest_works(version) if w.text_body.strip()]
    planned = []
    for i in range(size.generations):
        external_id = f"{EXTERNAL_PREFIX}{version.ai_model.name}-{i:04d}"
        if external_id not in missing:
            continue
        rng = random.Random(f"{external_id}:{days[0]}")
        work = rng.choice(works)
        opening = " ".join(work.text_body.split()[: rng.randint(3, 6)])
        if i % size.copy_every == 0:
            prompt = f"Write the opening of “{work.title}”."
            output = _edit_words(work.text_body, rng, words=60, edits=2)
            metadata = {"demo": True, "near_copy_of_work": work.pk}
        else:
            prompt = opening
            output = model.generate(opening, max_new_tokens=rng.randint(80, 160), seed=rng.randrange(2**31),
                                    temperature=0.8)
            metadata = {"demo": True}
        planned.append(PlannedGeneration(
            external_id=external_id, prompt=prompt, output_text=output,
            revenue=_revenue(rng, *size.text_cents),
            generated_at=_moment(days, size, i, 0), metadata=metadata,
        ))
    return planned


def _plan_images(version: ModelVersion, model: Any, size: TrafficSize, days: list[dt.date],
                 missing: set[str]) -> list:
    import numpy as np

    from attribution.adapters.reference_image import image_bytes_to_pixels, parse_digit_label, pixels_to_png

    works = _manifest_works(version)
    planned = []
    for i in range(size.generations):
        external_id = f"{EXTERNAL_PREFIX}{version.ai_model.name}-{i:04d}"
        if external_id not in missing:
            continue
        rng = random.Random(f"{external_id}:{days[0]}")
        if i % size.copy_every == 0:
            work = rng.choice(works)
            digit = parse_digit_label(work.title)
            with work.file.open("rb") as fh:
                pixels = image_bytes_to_pixels(fh.read())
            noise = np.random.default_rng(rng.randrange(2**31)).uniform(-0.05, 0.05, pixels.shape)
            png = pixels_to_png(np.clip(pixels + noise, 0.0, 1.0), scale=DIGIT_PNG_SCALE)
            metadata = {"demo": True, "near_copy_of_work": work.pk}
        else:
            digit = i % 10
            png = pixels_to_png(model.sample(digit, 1, seed=rng.randrange(2**31))[0], scale=DIGIT_PNG_SCALE)
            metadata = {"demo": True}
        word = DIGIT_WORDS[digit] if digit is not None else "digit"
        planned.append(PlannedGeneration(
            external_id=external_id, prompt=f"a handwritten {word}", output_png=png,
            revenue=_revenue(rng, *size.image_cents),
            generated_at=_moment(days, size, i, 7), metadata=metadata,
        ))
    return planned


# --- sending ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def local_site() -> Iterator[str]:
    """This Django site on a free loopback port, in a background thread; yields its base URL."""
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # the demo prints its own progress
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    server.set_app(get_wsgi_application())
    thread = threading.Thread(target=server.serve_forever, name="demo-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def post_generations(*, base_url: str, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``POST /api/v1/generations/`` batch with the key; the API's answer, or an error with its body."""
    import requests

    response = requests.post(
        f"{base_url}/api/v1/generations/", data=json.dumps({"generations": items}), timeout=120,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Accept": "application/json"},
    )
    if response.status_code not in (200, 201):
        raise RuntimeError(f"the generations API answered {response.status_code}: {response.text[:2000]}")
    return response.json()


@dataclass
class TrafficOutcome:
    sent: int = 0
    created: int = 0
    existing: int = 0
    near_copies: int = 0


def demo_traffic_send(*, outcomes: list[ModelOutcome], days: list[dt.date], quick: bool, say: Say) -> TrafficOutcome:
    """Log the demo's generations of ``days`` for every demo model over HTTP; only those not logged yet."""
    size = traffic_size(quick=quick)
    result = TrafficOutcome()
    with contextlib.ExitStack() as stack:
        base_url = None
        for outcome in outcomes:
            version = outcome.version
            wanted = {f"{EXTERNAL_PREFIX}{version.ai_model.name}-{i:04d}" for i in range(size.generations)}
            logged = set(Generation.objects.filter(model_version=version, external_id__in=wanted)
                         .values_list("external_id", flat=True))
            missing = wanted - logged
            if not missing:
                say(f"  {version.ref}: all {len(wanted)} generations of {days[0]} to {days[-1]} are logged")
                continue
            key = demo_api_key(ai_model=version.ai_model, say=say)
            network = demo_checkpoint_load(outcome)
            plan = (_plan_text if outcome.model is STORYTELLER else _plan_images)(version, network, size, days, missing)
            if base_url is None:
                base_url = stack.enter_context(local_site())
                say(f"  the site answers the model service at {base_url}/api/v1/generations/")
            for start in range(0, len(plan), BATCH):
                batch = plan[start : start + BATCH]
                answer = post_generations(base_url=base_url, key=key,
                                          items=[g.as_json(version_ref=version.ref) for g in batch])
                result.sent += len(batch)
                result.created += answer["created"]
                result.existing += answer["existing"]
                say(f"  {version.ref}: POST /api/v1/generations/ -> {answer['created']} created, "
                    f"{answer['existing']} existing ({start + len(batch)}/{len(plan)})")
            result.near_copies += sum(1 for g in plan if "near_copy_of_work" in g.metadata)
    return result
