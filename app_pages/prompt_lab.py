"""Prompt lab: edit a strategy's prompt, then run one cycle and see what the model made of it."""

import streamlit as st

from strategy_agent.errors import StrategyAgentError
from strategy_agent.ui.cycle_view import render_cycle
from strategy_agent.ui.widgets import empty_state, page_header, pick_strategy_or_stop
from strategy_agent.ui_runtime import get_runner, open_store
from strategy_agent.views.prompt_lab import (
    prompt_state,
    prompt_versions,
    run_cycle,
    save_prompt,
    template_choices,
    template_text,
    version_diff,
)

RESULT = "lab_result"
MESSAGE = "lab_message"

page_header(
    "Prompt lab",
    "Edit a strategy's prompt, run one cycle (or a dry run) and see why the model did what it did.",
)
runner = get_runner()
strategy_id = pick_strategy_or_stop(include_runs=False)  # a run's prompt is history
with open_store() as store:
    state = prompt_state(store, strategy_id)
editor_key = f"lab_prompt_{strategy_id}"
st.session_state.setdefault(editor_key, state.text)


def _use_template() -> None:
    st.session_state[editor_key] = template_text(st.session_state["lab_template"])


def _save() -> None:
    try:
        with open_store() as store:
            saved = save_prompt(store, strategy_id, st.session_state[editor_key])
        st.session_state[MESSAGE] = (
            "success",
            f"Saved as version {saved.version} of this strategy's prompt: the next cycle uses it.",
        )
        st.session_state.pop(f"lab_version_{strategy_id}", None)  # show the new version
    except StrategyAgentError as error:
        st.session_state[MESSAGE] = ("error", str(error))


if MESSAGE in st.session_state:
    kind, text = st.session_state.pop(MESSAGE)
    (st.success if kind == "success" else st.error)(text)

editor, versions = st.columns([3, 2], gap="medium")
with editor, st.container(border=True):
    source = {"none": "no prompt yet", "custom": "your own prompt"}.get(state.source, state.source)
    if state.version is not None:
        source += f" (version {state.version})"
    st.markdown(f"**Prompt** · model `{state.model}` · in use: {source}")
    if state.source.startswith("default template"):
        st.caption(
            f"No prompt of its own: this strategy runs with the default template "
            f"`{state.source.removeprefix('default template ')}` shown below. "
            "Save a prompt to use yours instead."
        )
    if not state.uses_prompt:
        st.info(
            f"This strategy decides with the built-in rule `{state.model}`, which reads the "
            "market, not the prompt. Give it an LLM model to make the prompt count; you can "
            "still write and save one here.",
            icon=":material/info:",
        )
    templates = template_choices()
    pick, use = st.columns([3, 1], vertical_alignment="bottom")
    pick.selectbox(
        "Start from a template", list(templates), format_func=templates.get, key="lab_template"
    )
    use.button(
        "Use template",
        on_click=_use_template,
        width="stretch",
        key="lab_use_template",
    )
    st.text_area("Strategy prompt", key=editor_key, height=260)
    note, save_col = st.columns([3, 1], vertical_alignment="center")
    save_col.button(
        "Save",
        type="primary",
        icon=":material/save:",
        on_click=_save,
        width="stretch",
        key="lab_save",
    )
    if st.session_state[editor_key].strip() != state.text.strip():
        note.caption(":orange[Unsaved changes: save to use them in the next cycle.]")
    else:
        note.caption("Saving makes a new version of this strategy's prompt.")

with versions, st.container(border=True):
    st.markdown("**Saved versions of this strategy**")
    with open_store() as store:
        saved = prompt_versions(store, strategy_id)
    if not saved:
        st.caption("No saved version yet: save the prompt to start its history.")
    else:
        labels = {
            v.version: f"v{v.version}" + (" (in use)" if v.version == state.version else "")
            for v in saved
        }
        version: int = st.selectbox(
            "Version",
            list(labels),
            format_func=lambda number: labels[number],
            key=f"lab_version_{strategy_id}",
        )
        with open_store() as store:
            diff = version_diff(store, strategy_id, version)
        st.caption("Changes against the version before it")
        st.code(diff or "(no change)", language="diff")

with st.container(border=True):
    running = runner.is_running(strategy_id)
    left, right = st.columns([3, 1], vertical_alignment="center")
    dry_run = left.toggle(
        "Dry run: compose on the current market without trading or recording",
        key="lab_dry_run",
    )
    clicked = right.button(
        "Run one cycle",
        type="primary",
        icon=":material/play_arrow:",
        disabled=running and not dry_run,
        width="stretch",
        key="lab_run",
    )
    if running and not dry_run:
        st.caption("This strategy is auto-running: pause it to step by hand, or use a dry run.")
    if clicked:
        with st.spinner(f"Running one cycle with {state.model}…"):
            try:
                st.session_state[RESULT] = (
                    strategy_id,
                    run_cycle(runner, strategy_id, dry_run=dry_run),
                )
            except StrategyAgentError as error:
                st.error(f"The cycle could not run: {error}", icon=":material/error:")

result = st.session_state.get(RESULT)
if result is None or result[0] != strategy_id:
    empty_state("No cycle yet: press **Run one cycle** to see the model's decision.")
else:
    detail = result[1]
    with st.container(border=True):
        title = "Dry run" if detail.dry_run else f"Cycle {detail.cycle}"
        st.subheader(f":material/insights: {title}: what the model decided and why")
        render_cycle(detail)
