// A stand-in for Twilio's Voice SDK (window.Twilio.Device), installed by the page tests before
// the page's own scripts run, when Twilio's voice servers cannot be reached (this machine has
// no network). It keeps the SDK's event names and methods the page uses, records what the page
// asks of it, and lets a test raise an incoming call. The real SDK is tested apart: that it
// loads under the page's CSP and integrity check and takes the app's token.
(() => {
  class Emitter {
    constructor() {
      this.handlers = {};
    }
    on(name, handler) {
      (this.handlers[name] = this.handlers[name] || []).push(handler);
      return this;
    }
    emit(name, ...args) {
      for (const handler of this.handlers[name] || []) handler(...args);
    }
  }

  class Call extends Emitter {
    constructor(parameters, customParameters) {
      super();
      this.parameters = parameters;
      this.customParameters = customParameters || {};
      this.muted = false;
      this.digits = "";
      this.status = "pending";
    }
    accept() {
      this.status = "open";
      this.emit("accept", this);
    }
    reject() {
      this.status = "closed";
      this.emit("reject");
    }
    disconnect() {
      this.status = "closed";
      this.emit("disconnect", this);
    }
    mute(muted) {
      this.muted = muted !== false;
      this.emit("mute", this.muted, this);
    }
    isMuted() {
      return this.muted;
    }
    sendDigits(digits) {
      this.digits += digits;
    }
  }

  class Device extends Emitter {
    constructor(token, options) {
      super();
      this.token = token;
      this.options = options;
      this.calls = [];
      window.__device = this;
    }
    async register() {
      this.emit("registering");
      this.emit("registered");
    }
    async connect(options) {
      const call = new Call({}, new Map(Object.entries(options.params || {})));
      call.to = options.params.To;
      this.calls.push(call);
      setTimeout(() => call.emit("ringing"), 0);
      return call;
    }
    updateToken(token) {
      this.token = token;
    }
    destroy() {
      this.destroyed = true;
    }
    ring(from) {
      const call = new Call({ From: from, CallSid: "CA" + "f".repeat(32) });
      this.calls.push(call);
      this.emit("incoming", call);
      return call;
    }
  }

  window.Twilio = { Device, Call };
})();
