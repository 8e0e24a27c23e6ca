// The profile's "Notifications on this device": asks the browser's permission, subscribes with
// eBox's public key and sends the subscription to eBox. Shown only where the browser can do it
// (service workers, PushManager, notifications); the list of devices works without JavaScript.
"use strict";

(function () {
  const section = document.querySelector("[data-push-key]");
  if (!section) {
    return;
  }
  const supported =
    "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
  if (!supported) {
    return;
  }
  const controls = section.querySelector("[data-push-controls]");
  const unsupported = section.querySelector("[data-push-unsupported]");
  const button = section.querySelector("[data-push-subscribe]");
  const status = section.querySelector("[data-push-status]");
  controls.hidden = false;
  if (unsupported) {
    unsupported.hidden = true;
  }

  function say(text) {
    status.textContent = text;
  }

  function csrfToken() {
    const headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    return headers["X-CSRFToken"] || "";
  }

  function keyBytes(base64url) {
    const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    return Uint8Array.from(atob(padded), (character) => character.charCodeAt(0));
  }

  function sameKey(subscription, key) {
    const current = subscription.options && subscription.options.applicationServerKey;
    if (!current) {
      return false;
    }
    const bytes = new Uint8Array(current);
    return bytes.length === key.length && bytes.every((value, index) => value === key[index]);
  }

  async function subscribe() {
    const permission = await Notification.requestPermission();
    if (permission !== "granted") {
      say(section.dataset.messageRefused);
      return;
    }
    await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    const registration = await navigator.serviceWorker.ready;
    const key = keyBytes(section.dataset.pushKey);
    let subscription = await registration.pushManager.getSubscription();
    if (subscription && !sameKey(subscription, key)) {
      await subscription.unsubscribe(); // made with an earlier key of eBox
      subscription = null;
    }
    if (!subscription) {
      subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: key,
      });
    }
    const response = await fetch(section.dataset.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(subscription.toJSON()),
    });
    if (response.ok) {
      window.location.reload();
      return;
    }
    const answer = await response.json().catch(() => ({}));
    say(answer.error || section.dataset.messageFailed);
  }

  button.addEventListener("click", () => {
    button.disabled = true;
    say("");
    subscribe()
      .catch(() => say(section.dataset.messageFailed))
      .finally(() => {
        button.disabled = false;
      });
  });
})();
