"""Per-row decoding: every row of a batch keeps its own candidate's knobs and its own random stream.

transformers' ``generate`` takes one ``GenerationConfig`` per call, so a population of candidates
would need one call per candidate, each with a batch of a few prompts: small batches leave most of
a CPU's (or GPU's) arithmetic idle. ``PerRowDecoding`` is one logits processor that applies, row by
row, what transformers' own processors would (same order, same formulas: repetition penalty
ignoring left padding, no-repeat n-grams, temperature, top-k, top-p) and then *chooses* each row's
token itself; ``generate`` runs greedily and just takes that choice. So one call serves a whole
population, and a response depends only on its own request, never on its batch mates:

- sampling draws one uniform per row and step from a generator seeded by the request (inverse CDF),
  so a batch of 1 or of 200, one device or eight, Ray or not, gives the same tokens;
- the seed depends on (search seed, sample index, prompt), not on the candidate: candidates share
  random numbers for the same prompt (common random numbers), so their differences are not noise;
- a row that reaches its own ``max_new_tokens`` is ended with a stop token (the caller cuts the
  response at the row's limit, so such a row counts as truncated, not finished);
- ``select`` keeps only some rows: the compacting decode loop drops finished rows from the batch;
- the work is on tensors, not per-row Python: the penalties are one gather/scatter (one unfold per
  n-gram size), and a sampled row draws from its top-k or top-p candidate set (``_sample``), which
  gives the token the full-vocabulary inverse CDF gives (tested draw by draw).
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from safetune.components.requests import request_seed  # noqa: F401 - re-exported
from safetune.config import DecodingConfig


def banned_ngram_tokens(tokens: list[int], n: int) -> list[int]:
    """Tokens that would complete an n-gram already present in ``tokens`` (transformers' rule)."""
    if n <= 0 or len(tokens) + 1 < n:
        return []
    prefix = tuple(tokens[len(tokens) - n + 1:]) if n > 1 else ()
    return [tokens[i + n - 1] for i in range(len(tokens) - n + 1) if tuple(tokens[i:i + n - 1]) == prefix]


class PerRowDecoding(LogitsProcessor):
    def __init__(self, configs: list[DecodingConfig], seeds: list[int], prompt_width: int,
                 pad_lengths: torch.Tensor, stop_id: int):
        self.configs = configs
        self.prompt_width = prompt_width  # padded prompt length: step = input length - prompt_width
        self.pad_lengths = pad_lengths.cpu()  # left padding per row: ignored by the repetition penalty
        self.stop_id = stop_id
        self.greedy = torch.tensor([not c.do_sample for c in configs])
        self.temperature = torch.tensor([max(c.temperature, 1e-6) for c in configs], dtype=torch.float32)
        self.penalty = torch.tensor([c.repetition_penalty for c in configs], dtype=torch.float32)
        self.top_k = torch.tensor([c.top_k if c.do_sample else 0 for c in configs])
        self.top_p = torch.tensor([c.top_p if c.do_sample else 1.0 for c in configs], dtype=torch.float32)
        self.max_new = torch.tensor([c.max_new_tokens for c in configs])
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        # Fluency for free: the log-probability of each chosen token under the model's *raw*
        # distribution (log-softmax of the unprocessed logits: no temperature, top-k/p or penalties),
        # one list per original row. ``origin`` maps current batch positions to original rows.
        self.origin = list(range(len(configs)))
        self.raw_logprobs: list[list[float]] = [[] for _ in configs]

    def select(self, rows) -> None:
        """Keep only ``rows`` (positions in the current batch, in that order), dropping the others' state.

        The compacting decode loop (``generation.decode_compacting``) removes finished rows from the
        batch; each kept row keeps its own knobs, padding length and random stream, so its tokens stay
        the same as in an uncompacted batch.
        """
        index = torch.as_tensor(rows, dtype=torch.long).cpu().flatten()
        kept = index.tolist()
        self.origin = [self.origin[i] for i in kept]
        self.configs = [self.configs[i] for i in kept]
        self.generators = [self.generators[i] for i in kept]
        for name in ("pad_lengths", "greedy", "temperature", "penalty", "top_k", "top_p", "max_new"):
            setattr(self, name, getattr(self, name)[index])

    # --- transformers' processors, one value per row -------------------------------------------
    def _repetition_penalty(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        rows = torch.nonzero(self.penalty != 1.0).flatten()
        if rows.numel() == 0:
            return scores
        vocab = scores.shape[-1]
        ids = input_ids[rows].clamp(max=vocab - 1)
        # Left padding is not part of the prompt: it stands in for the row's last token, which the
        # penalty treats anyway (each distinct token is penalised once, so a repeat changes nothing).
        positions = torch.arange(ids.shape[1], device=ids.device)
        ids = torch.where(positions[None, :] < self.pad_lengths[rows, None].to(ids.device), ids[:, -1:], ids)
        flat = (rows.to(ids.device)[:, None] * vocab + ids).flatten()
        got = scores.reshape(-1)[flat].view_as(ids)
        penalty = self.penalty[rows, None].to(scores.device)
        got = torch.where(got < 0, got * penalty, got / penalty)
        scores = scores.clone()  # never write into the raw logits: fluency is read from them
        scores.view(-1)[flat] = got.flatten()
        return scores

    def _no_repeat_ngram(self, input_ids: torch.Tensor, scores: torch.Tensor, owned: bool = False) -> torch.Tensor:
        """transformers' rule (``banned_ngram_tokens``) for every row with an n, vectorised per n.
        ``owned``: ``scores`` is already this step's private copy (the penalty made one), so bans are
        written into it instead of a second copy of the whole vocabulary."""
        raw = None if owned else scores
        sizes = torch.tensor([c.no_repeat_ngram_size for c in self.configs])
        for n in sorted(set(sizes.tolist()) - {0}):
            rows = torch.nonzero(sizes == n).flatten()
            ids = input_ids[rows.to(input_ids.device)]
            length = ids.shape[1]
            if length < n:
                continue
            # Window i holds tokens i..i+n-2 and bans token i+n-1 when it equals the last n-1 tokens;
            # windows must start inside the row's real tokens.
            starts = torch.arange(length - n + 1, device=ids.device)
            match = starts[None, :] >= self.pad_lengths[rows, None].to(ids.device)
            if n > 1:
                windows = ids.unfold(1, n - 1, 1)[:, :length - n + 1]
                match &= (windows == ids[:, length - n + 1:][:, None, :]).all(dim=-1)
            hit_row, hit_start = torch.nonzero(match, as_tuple=True)
            if hit_row.numel():
                if scores is raw:  # never write into the raw logits: fluency is read from them
                    scores = scores.clone()
                scores[rows.to(scores.device)[hit_row], ids[hit_row, hit_start + n - 1]] = -float("inf")
        return scores

    def _warp(self, scores: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Temperature, then top-k, then top-p (transformers' order), for the sampled rows."""
        s = scores[rows] / self.temperature[rows, None].to(scores.device)
        k = self.top_k[rows].to(scores.device)
        if (k > 0).any():
            kmax = int(min(int(k.max()), s.shape[-1]))
            kth = torch.topk(s, kmax).values.gather(1, (k.clamp(min=1, max=kmax) - 1)[:, None])
            s = s.masked_fill((s < kth) & (k > 0)[:, None], -float("inf"))
        p = self.top_p[rows].to(scores.device)
        nucleus = torch.nonzero(p < 1.0).flatten()
        if nucleus.numel():
            s[nucleus] = self._top_p(s[nucleus], p[nucleus])
        return s

    HEAD = 1024  # top-p's shortcut: the most likely tokens looked at before a full sort

    @staticmethod
    def _top_p(s: torch.Tensor, p: torch.Tensor, head: int = HEAD) -> torch.Tensor:
        """transformers' top-p: drop a token when the probability mass ranked above it is >= p.

        A full sort of the vocabulary per row and step is the slow part, so the rule is applied to the
        ``head`` most likely tokens when they already hold mass >= p (everything below them is then
        dropped anyway); rows whose head holds less fall back to the full sort.
        """
        probs = s.softmax(dim=-1)
        k = min(head, s.shape[-1])
        top_probs, top_idx = torch.topk(probs, k)
        above = top_probs.cumsum(dim=-1) - top_probs
        keep = above < p[:, None]
        keep[:, 0] = True  # keep at least one token
        out = torch.full_like(s, -float("inf")).scatter(1, top_idx, torch.where(keep, s.gather(1, top_idx), -float("inf")))
        short = torch.nonzero(top_probs.sum(dim=-1) < p).flatten()
        if short.numel():  # the head does not reach p: the exact rule over the whole vocabulary
            sorted_logits, sorted_idx = torch.sort(s[short], descending=False)
            cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
            remove = cumulative <= (1 - p[short])[:, None]
            remove[:, -1] = False
            out[short] = s[short].masked_fill(remove.scatter(1, sorted_idx, remove), -float("inf"))
        return out

    def _sample(self, scores: torch.Tensor, rows: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The sampled ``rows``' tokens: the draw by each row's uniform ``u`` from softmax(``_warp``),
        inverse CDF in vocabulary order, computed on each row's candidate set instead of the vocabulary.

        A row with top-k keeps only its k best tokens (ties at the k-th value included while they fit in
        the set); a row with top-p only its head (``_top_p``'s shortcut, exact when the head holds mass
        >= p). So one ``topk`` of the widest set replaces the full-vocabulary softmax, cumsum and
        scatter passes (with the penalties vectorised, per-row decoding went from 9% to 4% of the engine's
        time in ``benchmarks/bench_generation.py``). Rows with neither, or whose head is short of p,
        take the full-vocabulary path.
        """
        vocab = scores.shape[-1]
        k = self.top_k[rows].to(scores.device)
        p = self.top_p[rows].to(scores.device)
        width = torch.where(k > 0, k.clamp(max=vocab), torch.full_like(k, min(self.HEAD, vocab)))
        bounded = (k > 0) | (p < 1.0)
        picked = torch.empty(len(rows), dtype=torch.long, device=scores.device)
        full = ~bounded
        if bounded.any():
            b = torch.nonzero(bounded).flatten()
            kb, pb = k[b], p[b]
            # Temperature on the bounded rows only; when they are the whole batch (rows come sorted and
            # distinct), without gathering a copy of the vocabulary first. Same values either way.
            br = rows[b.to(rows.device)]
            temperature = self.temperature[br, None].to(scores.device)
            sb = scores / temperature if len(br) == scores.shape[0] else scores[br] / temperature
            vals, idx = torch.topk(sb, int(width[b].max()))  # descending
            kth = vals.gather(1, (kb.clamp(min=1, max=vals.shape[1]) - 1)[:, None])
            vals = vals.masked_fill((vals < kth) & (kb > 0)[:, None], -float("inf"))
            # Top-p's probabilities are over what top-k left: the set itself, or the whole vocabulary.
            log_z = torch.logsumexp(vals, dim=-1)
            no_k = torch.nonzero(kb == 0).flatten()
            if no_k.numel():
                log_z[no_k] = torch.logsumexp(sb[no_k], dim=-1)
            probs = (vals - log_z[:, None]).exp()
            nucleus = pb < 1.0
            keep = ((probs.cumsum(dim=-1) - probs) < pb[:, None]) | ~nucleus[:, None]
            keep[:, 0] = True
            vals = vals.masked_fill(~keep, -float("inf"))
            short = (kb == 0) & (probs.sum(dim=-1) < pb)  # the head misses mass the rule needs
            full[b[short]] = True
            # Kept tokens first, in vocabulary order, as the full-vocabulary inverse CDF sees them.
            order = idx.masked_fill(torch.isinf(vals), vocab).argsort(dim=-1)
            ids, vals = idx.gather(1, order), vals.gather(1, order)
            cdf = vals.softmax(dim=-1).cumsum(dim=-1)
            at = torch.searchsorted(cdf, (u[b] * cdf[:, -1])[:, None], right=True)
            at = torch.minimum(at, (~torch.isinf(vals)).sum(dim=-1, keepdim=True) - 1)
            picked[b] = ids.gather(1, at).flatten()
        if full.any():
            f = torch.nonzero(full).flatten()
            cdf = self._warp(scores, rows[f]).softmax(dim=-1).cumsum(dim=-1)
            # right=True: the first token whose cumulative mass exceeds u, which has mass > 0.
            at = torch.searchsorted(cdf, (u[f] * cdf[:, -1])[:, None], right=True).flatten()
            picked[f] = at.clamp(max=vocab - 1)
        return picked

    def choose(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.LongTensor:
        """Each row's next token (the stop id for a row at its ``max_new_tokens``), its raw
        log-probability recorded in ``raw_logprobs``."""
        raw = scores.float()
        log_z = torch.logsumexp(raw, dim=-1)  # before any processing: the base model's distribution
        scores = self._repetition_penalty(input_ids, raw)
        scores = self._no_repeat_ngram(input_ids, scores, owned=scores is not raw)
        sampled = torch.nonzero(~self.greedy).flatten()
        if sampled.numel() == 0:
            choice = scores.argmax(dim=-1)
        else:  # argmax only where it is the answer: a pass over the vocabulary per row saved
            greedy = torch.nonzero(self.greedy).flatten()
            choice = torch.empty(scores.shape[0], dtype=torch.long, device=scores.device)
            if greedy.numel():
                choice[greedy] = scores[greedy.to(scores.device)].argmax(dim=-1)
            u = torch.cat([torch.rand(1, generator=self.generators[int(r)]) for r in sampled]).to(scores.device)
            choice[sampled] = self._sample(scores, sampled, u)
        step = input_ids.shape[1] - self.prompt_width
        choice = torch.where(self.max_new.to(choice.device) <= step, torch.full_like(choice, self.stop_id), choice)
        # _repetition_penalty clones and _no_repeat_ngram copies (unless handed the penalty's copy) before
        # writing, so ``raw`` is unchanged.
        chosen = (raw.gather(1, choice[:, None]).flatten() - log_z).tolist()
        for row, lp in zip(self.origin, chosen):
            self.raw_logprobs[row].append(lp)
        return choice

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """As a logits processor for ``generate`` (greedy over the output): the chosen token alone."""
        choice = self.choose(input_ids, scores)
        out = torch.full_like(scores, -float("inf"))
        out.scatter_(1, choice[:, None], 0.0)
        return out
