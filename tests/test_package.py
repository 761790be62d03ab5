"""The package as a user first meets it: the version on the command line and the API in dir()."""
import pytest

import tritnet


def test_dir_lists_the_lazily_imported_api():
    # (submodules a test imported, tritnet.atomic and the like, are attributes too)
    public = set(n for n in dir(tritnet) if not n.startswith("_"))
    assert set(tritnet.__all__) <= public and dir(tritnet) == sorted(dir(tritnet))
    assert {"ternarize", "create_model", "list_models", "merge_sttn_", "TWNConfig"} <= public


@pytest.mark.parametrize("main, want", [("tritnet.cli", "tritnet 0.1.0"), ("tritnet_rt.cli", "tritnet-rt 0.1.0")])
def test_version_flag(main, want, capsys):
    import importlib
    with pytest.raises(SystemExit) as e:
        importlib.import_module(main).main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == want
