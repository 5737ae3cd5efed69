import pytest

from candor.chat import Message, render
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
