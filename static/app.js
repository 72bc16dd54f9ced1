// Task Store's own script, loaded from this origin like htmx (the Content-Security-Policy
// allows no inline or evaluated script, so htmx runs with allowEval off).

// A key table (a running task instance's, an asset's: tbody#key-rows) polls every 3 seconds.
// While one of its rows is being edited (the inline form carries class "editing"), a poll would
// wipe the open form: cancel the poll's request, and only the poll's (the form's own requests
// bubble up here too).
document.addEventListener("htmx:confirm", (event) => {
  const rows = event.target;
  if (rows.id === "key-rows" && rows.querySelector(".editing")) {
    event.preventDefault();
  }
});

// A poll already in flight when the form opened answers after it: keep the form, skip that
// answer (the next poll after Save or Cancel brings the rows up to date).
document.addEventListener("htmx:beforeSwap", (event) => {
  const rows = event.detail.target;
  if (rows && rows.id === "key-rows" && rows.querySelector(".editing")) {
    event.detail.shouldSwap = false;
  }
});

// Typing or pasting a time into "Expires at" means a custom expiry: switch Expiration to Custom
// (without this script the server refuses a time given with another choice, saying so).
document.addEventListener("input", (event) => {
  const field = event.target;
  if (!(field instanceof HTMLInputElement) || field.name !== "expires_at" || !field.value.trim()) {
    return;
  }
  const choice = field.form && field.form.elements.namedItem("expiration");
  if (choice instanceof HTMLSelectElement) {
    choice.value = "custom";
  }
});

// Copy buttons (hidden without this script): a key's name or its value as stored, pretty-printed
// as shown. The Clipboard API needs a secure context (https, localhost); elsewhere the text is
// selected and copied the older way.
function showCopyButtons(root) {
  root.querySelectorAll("button.copy[hidden]").forEach((button) => { button.hidden = false; });
}
document.addEventListener("DOMContentLoaded", () => showCopyButtons(document));
document.addEventListener("htmx:afterSettle", (event) => showCopyButtons(event.detail.elt || document));
document.addEventListener("click", async (event) => {
  const button = event.target instanceof Element && event.target.closest("button.copy");
  if (!button) {
    return;
  }
  const source = button.closest("td").querySelector("pre, code");
  const text = source ? source.textContent : "";
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  button.classList.add("copied");
  setTimeout(() => button.classList.remove("copied"), 1500);
});

// A box that scrolls (a table wider than the screen: the table itself on a phone, its div.scroll
// on a laptop; a long code sample) can be scrolled with the arrow keys once it has focus. While
// it scrolls and holds nothing focusable of its own, it gets a tab stop; a div is named after its
// section's heading. Rechecked when the window is resized and when htmx swaps content in.
const FOCUSABLE = "a[href], button:not([hidden]), input:not([type=hidden]), select, textarea, [tabindex]";
function scrolls(box) {
  const style = getComputedStyle(box);
  return (box.scrollWidth > box.clientWidth && ["auto", "scroll"].includes(style.overflowX))
    || (box.scrollHeight > box.clientHeight && ["auto", "scroll"].includes(style.overflowY));
}
function letKeyboardScroll() {
  for (const box of document.querySelectorAll("table, .scroll, pre")) {
    const ours = "scrollStop" in box.dataset;
    if (!ours && !box.hasAttribute("tabindex") && scrolls(box) && !box.querySelector(FOCUSABLE)) {
      box.tabIndex = 0;
      box.dataset.scrollStop = "";
      const heading = box.tagName === "DIV" && box.closest("section")?.querySelector("h2[id]");
      if (heading) {
        box.setAttribute("role", "region");
        box.setAttribute("aria-labelledby", heading.id);
      }
    } else if (ours && !scrolls(box)) {
      ["tabindex", "role", "aria-labelledby", "data-scroll-stop"].forEach((name) => box.removeAttribute(name));
    }
  }
}
let keyboardScrollPending = false;
function letKeyboardScrollSoon() {
  if (!keyboardScrollPending) {
    keyboardScrollPending = true;
    requestAnimationFrame(() => { keyboardScrollPending = false; letKeyboardScroll(); });
  }
}
document.addEventListener("DOMContentLoaded", letKeyboardScroll);
document.addEventListener("htmx:afterSettle", letKeyboardScrollSoon);
window.addEventListener("resize", letKeyboardScrollSoon);

// JSON fields (textarea[data-json], the Value of the Add and Edit forms): line numbers in a
// gutter beside the text, so "line 3, column 5" in the live check's message can be found. The
// text stops wrapping (each number then stands beside its line, a long line scrolls) and the
// gutter follows the textarea's scrolling and its count of lines. Without this script the
// textarea is as it was.
function numberLines(root) {
  root.querySelectorAll("textarea[data-json]:not([data-numbered])").forEach((area) => {
    const hadFocus = document.activeElement === area;
    const { selectionStart, selectionEnd } = area;
    const frame = document.createElement("div");
    frame.className = "numbered";
    const gutter = document.createElement("div");
    gutter.className = "line-numbers";
    gutter.setAttribute("aria-hidden", "true");
    area.before(frame);
    frame.append(gutter, area);
    area.dataset.numbered = "";
    area.setAttribute("wrap", "off");
    let shown = 0;
    const follow = () => {
      const lines = area.value.split("\n").length;
      if (lines !== shown) {
        shown = lines;
        // One line more than the text: room to scroll past the textarea's own scrollbar.
        gutter.textContent = Array.from({ length: lines }, (_, index) => index + 1).join("\n") + "\n ";
        gutter.style.width = `${Math.max(2, String(lines).length)}ch`; // CSSOM: allowed by the CSP
      }
      gutter.scrollTop = area.scrollTop;
    };
    area.addEventListener("input", follow);
    area.addEventListener("scroll", () => { gutter.scrollTop = area.scrollTop; });
    follow();
    if (hadFocus) {
      // Moving the textarea into the frame took the keyboard away from it: give it back.
      area.focus();
      area.setSelectionRange(selectionStart, selectionEnd);
    }
  });
}
document.addEventListener("DOMContentLoaded", () => numberLines(document));
document.addEventListener("htmx:load", (event) => numberLines(event.detail.elt));

// A run's page: each mapped task's name (tbody.mapped tr.group .group-name) becomes a button
// that hides and shows its map indexes' rows, saying which in aria-expanded. Without this
// script every row shows.
function addGroupToggles(root) {
  root.querySelectorAll("tbody.mapped tr.group .group-name").forEach((name) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "group-toggle";
    button.setAttribute("aria-expanded", "true");
    button.textContent = name.textContent;
    name.replaceWith(button);
  });
}
document.addEventListener("DOMContentLoaded", () => addGroupToggles(document));
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element && event.target.closest("button.group-toggle");
  if (!button) {
    return;
  }
  const expanded = button.getAttribute("aria-expanded") !== "true";
  button.setAttribute("aria-expanded", String(expanded));
  button.closest("tbody").querySelectorAll("tr:not(.group)").forEach((row) => { row.hidden = !expanded; });
});

// The live JSON check: 300 ms after typing in a JSON field stops, its status element (which
// htmx posts from, hx-trigger="json-input") is told to check. The pause is kept here rather
// than in htmx's own trigger, so typing straight after an inline form opens (before htmx has
// wired the new elements) is still checked.
const jsonCheckTimers = new WeakMap();
document.addEventListener("input", (event) => {
  const field = event.target;
  if (!(field instanceof HTMLTextAreaElement) || !field.hasAttribute("data-json")) {
    return;
  }
  clearTimeout(jsonCheckTimers.get(field));
  jsonCheckTimers.set(field, setTimeout(() => {
    const status = document.getElementById(field.id + "-check");
    if (status && window.htmx) {
      window.htmx.trigger(status, "json-input");
    }
  }, 300));
});

// A Cancel link marked data-close="#slot" (the inline Clear confirmation) empties that slot
// instead of loading the page again; without this script it is a plain link back.
document.addEventListener("click", (event) => {
  const link = event.target instanceof Element && event.target.closest("a[data-close]");
  const slot = link && document.querySelector(link.dataset.close);
  if (slot) {
    event.preventDefault();
    slot.replaceChildren();
  }
});
