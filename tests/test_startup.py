"""A command line that starts fast (issue 24): a command imports only what it needs, and a weights file is
hashed once per identity, not at every load."""
import ast
import os
import shutil
import warnings

import pytest

from conftest import run_python

import clipnb.models.loading
from clipnb.data.cache import CacheWarning, EmbeddingCache
from clipnb.models.loading import file_sha256, sha256_store, weights_sha256

HEAVY = ("torch", "transformers", "dask", "open_clip", "pandas", "numpy", "scipy", "torchvision", "clip")


def _heavy_imported(code: str) -> list[str]:
    """The heavy libraries a fresh process has imported after running `code`."""
    out = run_python(code + "; import sys; print(sorted(m for m in sys.modules if m.split('.')[0] in "
                            f"{HEAVY!r}))")
    assert out.returncode == 0, out.stderr
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])


def test_importing_the_package_and_its_command_line_imports_no_heavy_library():
    assert _heavy_imported("import clipnb, clipnb.cli") == []


def test_help_imports_no_heavy_library():
    code = ("import contextlib, io, clipnb.cli\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    try:\n        clipnb.cli.main(['--help'])\n    except SystemExit as exc:\n        assert exc.code == 0\n"
            "assert 'classify' in out.getvalue() and 'duplicates' in out.getvalue()")
    assert _heavy_imported(code) == []


def test_a_name_of_the_package_imports_its_module_on_first_use():
    import clipnb

    assert clipnb.load_model is clipnb.models.loading.load_model
    from clipnb import classify, embedding_map

    import clipnb.zeroshot.results as _  # noqa: F401 (a submodule named like a function keeps the function's name)
    assert callable(classify) and clipnb.classify is classify and clipnb.embedding_map is embedding_map
    assert set(clipnb.__all__) <= set(dir(clipnb))
    with pytest.raises(AttributeError, match="no_such_name"):
        clipnb.no_such_name
    # a submodule is there after `import clipnb` alone, as when the package imported every module itself
    out = run_python("import clipnb; print(clipnb.models.memory.release_freed_memory.__name__, clipnb.data.images.MAX_FILE_BYTES > 0)")
    assert out.returncode == 0 and out.stdout.split() == ["release_freed_memory", "True"], out.stderr


@pytest.fixture()
def counted_hashing(monkeypatch):
    """The files actually read to hash them (clipnb.data.files.file_sha256, which the store calls and
    models.loading imports)."""
    read = []

    def counting(path, *args, **kwargs):
        read.append(os.path.basename(path))
        return file_sha256(path, *args, **kwargs)
    monkeypatch.setattr(clipnb.models.loading, "file_sha256", counting)
    monkeypatch.setattr(clipnb.data.files, "file_sha256", counting)
    return read


def test_an_unchanged_weights_file_is_hashed_once(tiny_checkpoint, tmp_path, counted_hashing):
    weights = shutil.copy(tiny_checkpoint, tmp_path / "weights.pt")
    cache = EmbeddingCache(tmp_path / "cache")
    first = clipnb.models.loading.load_model(weights, device="cpu", cache=cache)
    assert counted_hashing == ["weights.pt"] and first.fingerprint == file_sha256(weights)
    again = clipnb.models.loading.load_model(weights, device="cpu", cache=cache)
    assert counted_hashing == ["weights.pt"] and again.fingerprint == first.fingerprint
    # the store lives in the cache folder: a new process (a new cache object) finds it too
    assert clipnb.models.loading.load_model(weights, device="cpu", cache=EmbeddingCache(tmp_path / "cache")).fingerprint \
        == first.fingerprint and counted_hashing == ["weights.pt"]
    # without a store, every load hashes
    clipnb.models.loading.load_model(weights, device="cpu", cache=None)
    assert counted_hashing == ["weights.pt"] * 2


def test_a_weights_file_edited_with_its_times_kept_is_hashed_again(tmp_path, counted_hashing):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"A" * 4096)
    before = os.stat(weights)
    with sha256_store(EmbeddingCache(tmp_path / "cache")):
        old = weights_sha256(weights)
        assert weights_sha256(weights) == old and len(counted_hashing) == 1
        # edited in place, size and modification time restored (as `exiftool -P` does): the change time moves
        with open(weights, "r+b") as handle:
            handle.write(b"B")
        os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert os.stat(weights).st_size == before.st_size and os.stat(weights).st_mtime_ns == before.st_mtime_ns
        edited = weights_sha256(weights)
        assert edited == file_sha256(weights) != old and len(counted_hashing) == 2
        # replaced by another file (a new inode) of the same size and modification time
        other = tmp_path / "other.bin"
        other.write_bytes(b"C" * 4096)
        os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(other, weights)
        replaced = weights_sha256(weights)
        assert replaced == file_sha256(weights) not in (old, edited) and len(counted_hashing) == 3
        assert weights_sha256(weights) == replaced and len(counted_hashing) == 3


def test_a_store_that_cannot_be_used_still_gives_the_right_sha256(tmp_path):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"weights")
    (tmp_path / "not a folder").write_text("a file where the cache folder should be")
    with warnings.catch_warnings(record=True) as caught, sha256_store(EmbeddingCache(tmp_path / "not a folder")):
        warnings.simplefilter("always")
        assert weights_sha256(weights) == file_sha256(weights)
    assert [w.category for w in caught] == [CacheWarning]
    assert (tmp_path / "not a folder").read_text() == "a file where the cache folder should be"


def test_the_command_line_keeps_the_weights_sha256_in_its_cache_folder(tiny_checkpoint, tmp_path, counted_hashing):
    from PIL import Image

    from clipnb.cli import main

    weights = shutil.copy(tiny_checkpoint, tmp_path / "weights.pt")
    Image.new("RGB", (32, 24), "red").save(tmp_path / "a.png")
    run = ["classify", str(tmp_path / "a.png"), "--classes", "cat", "dog", "--model", str(weights), "--quiet",
           "--csv", str(tmp_path / "out.csv")]
    for _ in range(2):
        assert main(run + ["--cache-dir", str(tmp_path / "cache")]) == 0
    assert counted_hashing.count("weights.pt") == 1
    assert main(run + ["--no-cache"]) == 0  # neither read nor written: hashed again
    assert counted_hashing.count("weights.pt") == 2


def test_counting_a_prompts_tokens_builds_no_second_tokenizer(tiny_model, monkeypatch):
    """openai-clip's prompt-length check counts with the tokenizer clip.tokenize uses (building another BPE
    tokenizer for each model cost 0.15 s of every run)."""
    from clip import simple_tokenizer

    from clipnb.models.families.openai import OpenAITokenizer

    built = []
    original = simple_tokenizer.SimpleTokenizer.__init__
    monkeypatch.setattr(simple_tokenizer.SimpleTokenizer, "__init__",
                        lambda self, *args, **kwargs: built.append(1) or original(self, *args, **kwargs))
    text = "a blurry photo of a red circle"
    end = int(tiny_model.tokenize([text]).argmax(dim=-1))  # the end-of-text token has the highest id
    assert OpenAITokenizer(77).count(text) == end + 1 and built == []


def test_the_torchscript_check_reads_an_unchanged_archives_sha256_from_the_store(tmp_path, monkeypatch,
                                                                                  counted_hashing):
    """check_checkpoint hashes a TorchScript archive to know whether it is an official one (open_clip's "openai"
    tag downloads such archives): during a load, an unchanged archive's SHA-256 comes from the store."""
    import torch

    from clipnb.models import files as model_files

    path = tmp_path / "ViT-B-32.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated, but it is how OpenAI's files were made
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    monkeypatch.setattr(model_files, "official_torchscript_sha256", lambda: frozenset({file_sha256(path)}))
    with sha256_store(EmbeddingCache(tmp_path / "cache")):
        for _ in range(2):
            assert model_files.check_checkpoint(path) == model_files.OFFICIAL_TORCHSCRIPT
    assert counted_hashing == ["ViT-B-32.pt"]
