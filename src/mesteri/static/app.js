// Progressive enhancement only: every form works without this file.
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
}

// Signed in: one live connection for the badges, chat and notifications.
if (document.body.dataset.signedIn) import("/static/realtime.js");

// The language switcher submits on change; its button stays for keyboard and no-JS use.
for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.requestSubmit());
}

// Pending state on submit, so a slow network does not invite a second click.
document.addEventListener("submit", (event) => {
  const button = event.target.querySelector("button[type=submit]");
  if (button) {
    button.setAttribute("aria-busy", "true");
    setTimeout(() => button.removeAttribute("aria-busy"), 8000);
  }
});

// Buttons that cannot be undone ask first (data-confirm holds the translated question).
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const question = button?.dataset?.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
