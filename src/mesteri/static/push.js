// "Enable push notifications on this device": subscribe with the platform's VAPID key
// and hand the subscription to the server. Shown only where the browser can do it.
const form = document.getElementById("push-enable");
if (form && "serviceWorker" in navigator && "PushManager" in window && "Notification" in window) {
  form.hidden = false;
  const status = form.querySelector(".upload-status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const permission = await Notification.requestPermission();
    if (permission !== "granted") { status.textContent = status.dataset.denied; return; }
    const registration = await navigator.serviceWorker.ready;
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: key(form.dataset.vapidKey),
    });
    form.querySelector("input[name=subscription]").value = JSON.stringify(subscription.toJSON());
    form.querySelector("input[name=label]").value = navigator.userAgent.slice(0, 200);
    const response = await fetch(form.action, { method: "POST", body: new FormData(form) });
    if (response.ok) { status.textContent = status.dataset.done; setTimeout(() => location.reload(), 800); }
  });
}

function key(base64url) {
  const padded = base64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (base64url.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}
