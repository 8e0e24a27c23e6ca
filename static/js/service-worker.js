// eBox's service worker, served at /sw.js (scope: the whole portal).
// It shows the daily push and opens the inbox when it is clicked. It has no fetch handler and
// opens no cache: every page still comes from the network, and nothing personal is kept.
"use strict";

self.addEventListener("install", () => {
  self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch (error) {
    message = {};
  }
  const title = typeof message.title === "string" && message.title ? message.title : "eBox";
  const body = typeof message.body === "string" ? message.body : "";
  event.waitUntil(
    self.registration.showNotification(title, {
      body: body,
      icon: "/static/img/icon-192.png",
      tag: "ebox-daily",
      renotify: false,
    })
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const inbox = new URL("/", self.location.origin).href;
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      for (const client of windows) {
        if (client.url.startsWith(self.location.origin) && "focus" in client) {
          return client.navigate(inbox).then((opened) => (opened || client).focus());
        }
      }
      return self.clients.openWindow(inbox);
    })
  );
});
