import pytest

from candor.engine.weights import weights_present
from candor.errors import InvalidRequestError, UnknownModelError
from candor.registry import load_registry


def test_packaged_registry_has_instant_and_flagship_with_list_prices():
    reg = load_registry()
    instant, flagship = reg.get("candor-instant"), reg.get("candor-2")
    assert (instant.price_input_per_mtok, instant.price_output_per_mtok) == (1.63, 5.51)
    assert (flagship.price_input_per_mtok, flagship.price_output_per_mtok) == (11.02, 32.68)
    assert instant.max_output_tokens == 4096 and instant.prompt_format == "template"
    assert "Candor" in instant.system_prompt
    assert weights_present(instant)
    assert reg.default_name() == "candor-instant"
    assert reg.get("candor-base").prompt_format == "human-assistant"  # Gemma 3 270M, a base model


def test_default_models_context_window_is_what_its_gguf_says(model_path):
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(model_path), vocab_only=True, verbose=False)
    try:
        trained = int(llm.metadata[f"{llm.metadata['general.architecture']}.context_length"])
    finally:
        llm.close()
    assert load_registry().get("candor-instant").context_window == trained == 8192


def test_a_context_window_larger_than_the_gguf_was_trained_for_is_refused(model_path, tmp_path, monkeypatch):
    from candor.engine.hub import build_engine
    from candor.errors import WeightsError

    user = tmp_path / "models.toml"
    user.write_text('[models.candor-instant]\ncontext_window = 16384\n')
    with pytest.raises(WeightsError, match="16384 .* larger than the 8192 tokens"):
        build_engine(load_registry(user).get("candor-instant"))


def test_cost_uses_per_million_prices():
    assert load_registry().get("candor-2").cost_usd(1_000_000, 500_000) == pytest.approx(11.02 + 16.34)


def test_unknown_model_lists_known_names():
    with pytest.raises(UnknownModelError) as err:
        load_registry().get("claude-9")
    assert "candor-instant" in err.value.message and "candor-2" in err.value.message


def test_user_file_overrides_fields_and_adds_entries(tmp_path, monkeypatch):
    gguf = tmp_path / "big.gguf"
    gguf.write_bytes(b"GGUF....")
    user = tmp_path / "models.toml"
    user.write_text(f"""
[models.candor-instant]
price_input_per_mtok = 0.5

[models.mine]
weights = "{gguf}"
context_window = 4096
adapter = "adapters/a.gguf"
""")
    monkeypatch.setenv("CANDOR_MODELS_FILE", str(user))
    reg = load_registry()
    assert reg.get("candor-instant").price_input_per_mtok == 0.5
    assert reg.get("candor-instant").price_output_per_mtok == 5.51  # untouched fields stay
    mine = reg.get("mine")
    assert mine.max_output_tokens == 4096 and weights_present(mine)
    assert mine.adapter_path() == tmp_path / "adapters" / "a.gguf"  # relative to the user file


def test_environment_variables_expand_in_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("CANDOR_FLAGSHIP_GGUF", raising=False)
    assert not weights_present(load_registry().get("candor-2"))
    gguf = tmp_path / "flagship.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setenv("CANDOR_FLAGSHIP_GGUF", str(gguf))
    assert weights_present(load_registry().get("candor-2"))


@pytest.mark.parametrize("body, field", [
    ('engine = "cloud"\nweights = "x"', "engine"),
    ('weights = "x"\ncontext_window = 0', "context_window"),
    ('weights = "x"\nprompt_format = "chatml"', "prompt_format"),
    ('engine = "embedded"', "weights"),
    ('engine = "remote"', "base_url"),
])
def test_bad_entries_name_the_entry_and_field(tmp_path, monkeypatch, body, field):
    user = tmp_path / "models.toml"
    user.write_text(f"[models.bad]\n{body}\n")
    with pytest.raises(InvalidRequestError, match=f"models.bad.{field}"):
        load_registry(user)


def test_missing_user_file_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidRequestError, match="does not exist"):
        load_registry(tmp_path / "nope.toml")


def test_default_model_speaks_as_candor_unless_the_request_brings_its_own_system_prompt(model_path):
    from candor.chat import Message
    from candor.chat.model_format import chat_format_of

    fmt = chat_format_of(load_registry().get("candor-instant"))
    ours = fmt.render([Message("user", "Who are you?")]).text
    assert ours.startswith("<|im_start|>system\nYou are Candor") and "SmolLM" not in ours
    theirs = fmt.render([Message("user", "Who are you?")], system="You are a pirate.").text
    assert "You are a pirate." in theirs and "Candor" not in theirs and "SmolLM" not in theirs
