import pytest

from candor.chat import ChatFormat, Message, render, render_answer
from candor.chat.render import parse_prompt
from candor.errors import InvalidRequestError

# A template in the style GGUF files carry (no system role: it raises, so the renderer folds).
NO_SYSTEM_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n{{ m['content'] }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
SYSTEM_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def test_human_assistant_format_with_system_before_first_turn():
    r = render([Message("user", "Hi"), Message("assistant", "Hello!"), Message("user", "2+2?")],
               system="Be brief.")
    assert r.text == "Be brief.\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: 2+2?\n\nAssistant:"
    assert r.end_sequences == ("\n\nHuman:",)
    assert r.prefill == ""


def test_without_system_prompt_starts_with_human_turn():
    assert render([{"role": "user", "content": "Hi"}]).text == "\n\nHuman: Hi\n\nAssistant:"


def test_final_assistant_message_is_a_prefill():
    r = render([Message("user", "Name a colour"), Message("assistant", "The colour is")])
    assert r.text.endswith("\n\nAssistant: The colour is")
    assert r.prefill == "The colour is"


def test_template_keeps_system_prompt_by_folding_it_into_first_turn():
    r = render([Message("user", "Hi")], system="You are Candor.", chat_template=NO_SYSTEM_TEMPLATE,
               special_tokens={"bos_token": "<bos>", "eos_token": "<eos>"})
    assert r.text == "<start_of_turn>user\nYou are Candor.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
    assert not r.text.startswith("<bos>")  # the engine adds BOS when tokenizing


def test_template_with_system_role_uses_it():
    r = render([Message("user", "Hi")], system="Sys", chat_template=SYSTEM_TEMPLATE)
    assert r.text == "<|system|>Sys</s><|user|>Hi</s><|assistant|>"


def test_a_template_is_compiled_once_and_its_renders_stay_independent():
    from candor.chat.render import _compiled

    _compiled.cache_clear()
    first = render([Message("user", "Hi")], system="Sys", chat_template=SYSTEM_TEMPLATE)
    second = render([Message("user", "Bye")], chat_template=SYSTEM_TEMPLATE)
    assert _compiled.cache_info().misses == 1 and _compiled.cache_info().hits == 1
    assert first.text == "<|system|>Sys</s><|user|>Hi</s><|assistant|>"
    assert second.text == "<|user|>Bye</s><|assistant|>"  # nothing of the first render carried over


def test_template_prefill_is_appended_after_generation_prompt():
    r = render([Message("user", "Hi"), Message("assistant", "Sure:")], chat_template=SYSTEM_TEMPLATE)
    assert r.text == "<|user|>Hi</s><|assistant|>Sure:"


@pytest.mark.parametrize("messages, field, text", [
    ([], "messages", "at least one message"),
    ([Message("assistant", "hi")], "messages", 'first message must use the "user" role'),
    ([Message("user", "a"), Message("user", "b")], "messages", "roles must alternate"),
    ([Message("user", "  ")], "messages.0", "non-empty"),
    ([Message("user", "a"), Message("assistant", "b ")], "messages.1", "trailing whitespace"),
])
def test_invalid_conversations_name_the_field(messages, field, text):
    with pytest.raises(InvalidRequestError, match=text) as err:
        render(messages)
    assert err.value.field == field
    assert err.value.message.startswith(field)


# A ChatML template in the style of SmolLM2's: it writes its own identity when no system is given.
CHATML_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SMOL_TOKENS = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "add_bos_token": "false"}


def test_default_system_prompt_replaces_the_templates_identity():
    fmt = ChatFormat(CHATML_TEMPLATE, SMOL_TOKENS, default_system="You are Candor.")
    text = fmt.render([Message("user", "Hi")]).text
    assert text == "<|im_start|>system\nYou are Candor.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert "SmolLM" not in text


def test_a_users_system_prompt_replaces_the_default():
    fmt = ChatFormat(CHATML_TEMPLATE, SMOL_TOKENS, default_system="You are Candor.")
    text = fmt.render([Message("user", "Hi")], system="Answer in French.").text
    assert "Answer in French." in text and "Candor" not in text and "SmolLM" not in text


def test_bos_the_tokenizer_never_adds_is_kept_in_the_text():
    """SmolLM2's BOS is <|im_start|> and its tokenizer adds none: dropping it loses the first turn marker."""
    kept = render([Message("user", "Hi")], "S", chat_template=CHATML_TEMPLATE, special_tokens=SMOL_TOKENS).text
    assert kept.startswith("<|im_start|>system\nS")
    dropped = render([Message("user", "Hi")], "S", chat_template=CHATML_TEMPLATE,
                     special_tokens={**SMOL_TOKENS, "add_bos_token": "true"}).text
    assert dropped.startswith("system\nS")


def test_training_example_is_the_served_prompt_plus_the_answer_and_end_of_turn():
    fmt = ChatFormat(CHATML_TEMPLATE, SMOL_TOKENS, default_system="You are Candor.")
    conv = [Message("user", "Hi"), Message("assistant", "Hello!")]
    prompt, completion = fmt.render_answer(conv)
    assert prompt == fmt.render(conv[:1]).text
    assert completion == "Hello!<|im_end|>"
    assert render_answer(conv) == ("\n\nHuman: Hi\n\nAssistant:", " Hello!\n\nHuman:")


def test_text_completions_prompt_splits_into_turns_any_format_can_render():
    messages, system = parse_prompt("Be brief.\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: 2+2?\n\nAssistant:")
    assert system == "Be brief." and [m.role for m in messages] == ["user", "assistant", "user"]
    text = ChatFormat(CHATML_TEMPLATE, SMOL_TOKENS).render(messages, system).text
    assert text.endswith("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n") and "Human:" not in text
