// Portcullis approver app: the service worker (scope /app/). Plain browser JavaScript, served as is.
//
// - push: every push shows a notification (browsers revoke the subscriptions of apps that stay
//   silent). The payload is only {"v":1,"id":REQUEST_ID}; the notification says that a sign-in waits
//   and nothing more, so it needs nothing else. An open page is told to refresh its list.
// - notificationclick: focuses the open app, or opens /app/.
// - pushsubscriptionchange: subscribes again with the appliance's key and sends the new
//   subscription with a signed PUT /app/api/v2/push.
// - fetch: the page and its files come from the network when it answers, else from the copy kept
//   here, so that the app opens (and says it is offline) without a connection. API calls are never
//   kept.
"use strict";

importScripts("/app/lib.js");

const CACHE = "portcullis-app-v1";
const SHELL = ["/app/", "/app/app.js", "/app/lib.js", "/app/app.css", "/app/manifest.webmanifest", "/app/icons/icon-192.png"];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((c) => c.addAll(SHELL))
      .catch(() => undefined)
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  const path = url.pathname;
  if (!SHELL.includes(path)) return;
  event.respondWith(
    fetch(event.request)
      .then((res) => {
        if (res.ok) {
          const copy = res.clone();
          void caches.open(CACHE).then((c) => c.put(path, copy));
        }
        return res;
      })
      .catch(() => caches.match(path).then((hit) => hit || Response.error())),
  );
});

self.addEventListener("push", (event) => {
  let id = "";
  try {
    const data = event.data ? event.data.json() : null;
    if (data && data.v === 1 && typeof data.id === "string") id = data.id.slice(0, 64);
  } catch (e) {
    // Not our payload: still show the notification below.
  }
  event.waitUntil(
    Promise.all([
      self.registration.showNotification("Sign-in request", {
        body: "Someone is signing in with your account. Open Portcullis to approve or reject.",
        tag: id ? "request-" + id : "request",
        renotify: true,
        requireInteraction: true,
        icon: "/app/icons/icon-192.png",
        badge: "/app/icons/icon-192.png",
        data: { id },
      }),
      self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((list) => {
        for (const c of list) c.postMessage({ type: "refresh", id });
      }),
    ]),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((list) => {
      for (const c of list) {
        if (new URL(c.url).pathname.startsWith("/app/") && "focus" in c) {
          c.postMessage({ type: "refresh" });
          return c.focus();
        }
      }
      return self.clients.openWindow("/app/");
    }),
  );
});

self.addEventListener("pushsubscriptionchange", (event) => {
  const L = self.PortcullisLib;
  event.waitUntil(
    (async () => {
      const device = await L.getDevice();
      if (!device || !device.vapid) return;
      const sub = await self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: L.fromB64url(device.vapid) });
      const json = sub.toJSON();
      const res = await L.signedFetch(device, "PUT", "/push", { endpoint: json.endpoint, keys: json.keys });
      if (res.status === 204) {
        device.pushEndpoint = json.endpoint;
        await L.putDevice(device);
      }
    })().catch(() => undefined),
  );
});
