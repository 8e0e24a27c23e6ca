// Registers eBox's service worker (/sw.js), which only shows push notifications: it caches
// nothing (see static/js/service-worker.js). Browsers without service workers lose nothing.
"use strict";

if ("serviceWorker" in navigator) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
  });
}
