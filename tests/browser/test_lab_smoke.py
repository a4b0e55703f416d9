"""Smoke test of the browser harness: ipywidgets and anywidget work in this JupyterLab.

Why: the analyst-facing forms are ipywidgets (and an anywidget for the card
element). If the labextensions don't load, or widget messages don't reach the
kernel, every form test would fail in confusing ways; this test fails first,
with a screenshot, and also pins down the selectors the form tests rely on.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from lab import LabNotebook, LabServer, write_notebook

if TYPE_CHECKING:  # imported lazily so a machine without playwright skips cleanly
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

NOTEBOOK = "smoke_widgets.ipynb"

CELLS = [
    (
        "markdown",
        "# Harness smoke test\nipywidgets and anywidget driven from a real browser.",
    ),
    # ipywidgets: a person moves the slider, clicks Apply, the label follows.
    """\
import ipywidgets as w

slider = w.IntSlider(value=3, min=0, max=10, description="Amount")
button = w.Button(description="Apply")
label = w.Label(value="nothing yet")
button.on_click(lambda _b: setattr(label, "value", f"slider is {slider.value}"))
seen = w.Label(value="kernel has 3")  # the slider's value as the kernel has it
slider.observe(lambda ch: setattr(seen, "value", f"kernel has {ch['new']}"), "value")
w.VBox([slider, button, label, seen])
""",
    # The controls the Accept Payment form uses, to pin down their selectors.
    """\
tick = w.Checkbox(value=False, description="Invoice 1001", indent=False)
payment = w.Text(value="", description="Payment", placeholder="0.00")
method = w.Dropdown(options=["Insurance", "Insurance Check", "Insurance EFT/ACH"],
                    description="Payment Method")
kind = w.RadioButtons(options=["Insurance Payment", "Client Payment"], description="Type")
notes = w.Textarea(description="Notes")
summary = w.HTML(value="<b>no summary</b>")
record = w.Button(description="Record Payment", button_style="primary")

def on_record(_b):
    summary.value = (f"<b>ticked={tick.value} payment={payment.value} method={method.value} "
                     f"kind={kind.value} notes={notes.value}</b>")

record.on_click(on_record)
w.VBox([kind, tick, payment, method, notes, record, summary])
""",
    # anywidget: an <input> rendered by _esm whose typing syncs a traitlet; the
    # kernel answers through another widget, proving the round trip.
    '''\
import anywidget
import traitlets

class Echo(anywidget.AnyWidget):
    _esm = """
    function render({ model, el }) {
      const input = document.createElement("input");
      input.className = "recon-echo-input";
      input.placeholder = "type here";
      input.value = model.get("value");
      const out = document.createElement("span");
      out.className = "recon-echo-out";
      const show = () => { out.textContent = "echo: " + model.get("value"); };
      show();
      input.addEventListener("input", () => {
        model.set("value", input.value);
        model.save_changes();
      });
      model.on("change:value", show);
      el.append(input, out);
    }
    export default { render };
    """
    value = traitlets.Unicode("").tag(sync=True)

echo = Echo()
kernel_echo = w.Label(value="kernel saw nothing")
echo.observe(lambda ch: setattr(kernel_echo, "value", "kernel saw " + ch["new"].upper()), "value")
w.VBox([echo, kernel_echo])
''',
    'print(f"KERNEL slider={slider.value} label={label.value!r} echo={echo.value!r}")',
]


def test_widgets_render_and_react(page: Page, lab_server: LabServer) -> None:
    """Open, run all, then click and type like an analyst and see both sides change."""
    from playwright.sync_api import expect

    write_notebook(lab_server.root / NOTEBOOK, CELLS)

    t0 = time.monotonic()
    nb = LabNotebook.open(page, lab_server, NOTEBOOK)
    t_open = time.monotonic() - t0
    assert nb.run_all(), "run-all stopped at a failing cell"
    assert nb.wait_for_widgets() == 3
    t_run = time.monotonic() - t0 - t_open
    nb.assert_no_output_errors()
    panel = nb.panel

    # ipywidgets: keyboard on the slider handle, then a real click on the button.
    # ipywidgets 8 links descriptions to inputs (<label for=...>) and noUiSlider
    # gives the handle role=slider, so accessible locators work.
    handle = panel.get_by_role("slider")
    handle.focus()
    handle.press("ArrowRight")
    handle.press("ArrowRight")
    expect(panel.locator(".widget-slider .widget-readout")).to_have_text("5")
    # The browser sends a slider's moves to the kernel a little later (throttled); Apply reads
    # the kernel's value, so it is clicked once the kernel has the 5 (a click before read 4).
    expect(panel.locator(".widget-label", has_text="kernel has")).to_have_text("kernel has 5")
    panel.get_by_role("button", name="Apply").click()
    expect(panel.locator(".widget-label", has_text="slider is")).to_have_text("slider is 5")

    # Form controls, found the way the Accept Payment test will find them.
    panel.get_by_role("radio", name="Insurance Payment").check()
    panel.get_by_label("Invoice 1001").check()
    panel.get_by_label("Payment", exact=True).fill("12.50")  # not "Payment Method"
    panel.get_by_label("Payment Method").select_option(label="Insurance Check")
    panel.get_by_label("Notes").fill("EOB 7")
    panel.get_by_role("button", name="Record Payment").click()
    expect(panel.locator(".widget-html-content", has_text="ticked=")).to_have_text(
        "ticked=True payment=12.50 method=Insurance Check kind=Insurance Payment notes=EOB 7"
    )

    # anywidget: type into the _esm-rendered input; the view and the kernel follow.
    echo_input = panel.locator("input.recon-echo-input")
    echo_input.click()
    echo_input.press_sequentially("hello", delay=30)
    expect(panel.locator(".recon-echo-out")).to_have_text("echo: hello")
    expect(panel.locator(".widget-label", has_text="kernel saw")).to_have_text("kernel saw HELLO")

    # Kernel-side truth: re-run the last cell and read what it printed.
    idx = nb.cell_index("KERNEL slider=")
    assert nb.run_cell(idx)
    assert nb.cell_stdout(idx).strip() == "KERNEL slider=5 label='slider is 5' echo='hello'"
    nb.assert_no_output_errors()

    shot = nb.screenshot("browser-smoke-widgets", full=True)
    assert shot.stat().st_size > 10_000
    print(f"\nlab smoke timings: open+kernel {t_open:.1f}s, run-all+widgets {t_run:.1f}s")
