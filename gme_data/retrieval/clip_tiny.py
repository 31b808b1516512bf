"""Tiny random CLIP / SigLIP checkpoints written to a folder, fully offline (for tests and demos).

:func:`save_tiny_clip_family` writes what a real checkpoint folder holds: ``config.json`` + weights
(``save_pretrained``), a tokenizer and the family's PIL image processor config with explicit sizes.
CLIP gets a word-level tokenizer built with the ``tokenizers`` library (``tokenizer.json``,
``<|startoftext|> ... <|endoftext|>``); SigLIP gets transformers' own ``SiglipTokenizer`` over a
word-level SentencePiece model trained here (``spiece.model``). The weights are random: the vectors
mean nothing, but every code path of :class:`~gme_data.retrieval.clip_family.ClipFamilyEmbedder`
runs as it would on a real checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from gme_data.errors import InvalidInputError

#: Words the tiny tokenizer knows (anything else becomes ``<unk>``).
WORDS = ("a", "an", "the", "photo", "of", "picture", "red", "green", "blue", "yellow", "cat", "dog", "car",
         "tree", "house", "flower", "bird", "boat", "tower", "bridge", "river", "mountain", "city", "street",
         "find", "image", "text", "that", "matches", "given", "what", "is", "this", "plant", "on", "in")


def _tokenizer(family: str, max_length: int):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if family == "siglip":
        return _siglip_tokenizer(max_length)
    specials = ["<|startoftext|>", "<|endoftext|>", "<unk>", "<pad>"]
    vocab = {tok: i for i, tok in enumerate([*specials, *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", vocab["<|startoftext|>"]), ("<|endoftext|>", vocab["<|endoftext|>"])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<unk>", pad_token="<pad>", model_max_length=max_length)
    return fast, {"vocab_size": len(vocab), "bos_token_id": vocab["<|startoftext|>"],
                  "eos_token_id": vocab["<|endoftext|>"], "pad_token_id": vocab["<pad>"]}


def _siglip_tokenizer(max_length: int):
    """transformers' own ``SiglipTokenizer`` over a word-level SentencePiece model trained here on WORDS
    (pad 0, eos 1, unk 2, as SigLIP's)."""
    import io
    import tempfile

    import sentencepiece as spm
    from transformers import SiglipTokenizer

    sentences = [" ".join(WORDS[i:i + 6]) for i in range(0, len(WORDS), 3)] * 20
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model, vocab_size=len(WORDS) + 3,
                                   model_type="word", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   hard_vocab_limit=False, minloglevel=2)
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/spiece.model"
        with open(path, "wb") as fh:
            fh.write(model.getvalue())
        tok = SiglipTokenizer(vocab_file=path, model_max_length=max_length)
    return tok, {"vocab_size": len(tok), "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}


def save_tiny_clip_family(folder: str | Path, family: str = "clip", seed: int = 0, image_size: int = 32,
                          max_length: int = 16) -> Path:
    """Write a tiny random ``CLIPModel`` (``family="clip"``) or ``SiglipModel`` (``"siglip"``) checkpoint
    with its tokenizer and image processor to ``folder``; returns the folder."""
    import torch
    from transformers import CLIPConfig, CLIPModel, SiglipConfig, SiglipModel

    if family not in ("clip", "siglip"):
        raise InvalidInputError(f"family must be 'clip' or 'siglip', got {family!r}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer, ids = _tokenizer(family, max_length)
    tower = {"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4}
    text = {**tower, **ids, "max_position_embeddings": max_length}
    vision = {**tower, "image_size": image_size, "patch_size": 8}
    torch.manual_seed(seed)
    if family == "clip":
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=24))
    else:
        model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
    model.eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    _image_processor(family, image_size).save_pretrained(out)
    return out


def _image_processor(family: str, size: int):
    if family == "clip":
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

        return CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                                     do_center_crop=True, resample=3)
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    return SiglipImageProcessorPil(size={"height": size, "width": size}, resample=3)
