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
