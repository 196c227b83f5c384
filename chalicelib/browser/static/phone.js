// Switchboard softphone: sign in with Cognito, fetch a Voice SDK token, place and take calls.
// Plain JavaScript, no build step. Tokens are kept in memory only: a reload signs out.
"use strict";

(function () {
  const config = document.body.dataset;
  const $ = (id) => document.getElementById(id);
  const session = { username: "", idToken: "", refreshToken: "", challenge: "" };
  let device = null;
  let call = null;
  let incoming = null;

  function status(text, isError) {
    $("status").textContent = text;
    $("status").classList.toggle("error", Boolean(isError));
  }

  function callState(text) {
    $("call-state").textContent = text;
  }

  // Cognito's API, called directly: the password goes to Cognito and never to this app.
  async function cognito(action, body) {
    const response = await fetch(config.cognitoUrl, {
      method: "POST",
      headers: {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AWSCognitoIdentityProviderService." + action,
      },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(data.message || data.Message || "sign-in failed (" + response.status + ")");
    }
    return data;
  }

  async function signedIn(result) {
    session.idToken = result.AuthenticationResult.IdToken;
    if (result.AuthenticationResult.RefreshToken) {
      session.refreshToken = result.AuthenticationResult.RefreshToken;
    }
    $("password").value = "";
    $("login").hidden = true;
    $("new-password").hidden = true;
    await startDevice();
  }

  async function signIn(event) {
    event.preventDefault();
    session.username = $("username").value.trim();
    status("Signing in…");
    try {
      const result = await cognito("InitiateAuth", {
        AuthFlow: "USER_PASSWORD_AUTH",
        ClientId: config.clientId,
        AuthParameters: { USERNAME: session.username, PASSWORD: $("password").value },
      });
      if (result.ChallengeName === "NEW_PASSWORD_REQUIRED") {
        session.challenge = result.Session;
        $("login").hidden = true;
        $("new-password").hidden = false;
        status("A new password is required");
        return;
      }
      if (!result.AuthenticationResult) {
        throw new Error("sign-in needs a step this page does not support: " + result.ChallengeName);
      }
      await signedIn(result);
    } catch (error) {
      status(error.message, true);
    }
  }

  async function setPassword(event) {
    event.preventDefault();
    try {
      const result = await cognito("RespondToAuthChallenge", {
        ChallengeName: "NEW_PASSWORD_REQUIRED",
        ClientId: config.clientId,
        Session: session.challenge,
        ChallengeResponses: { USERNAME: session.username, NEW_PASSWORD: $("new-password-value").value },
      });
      $("new-password-value").value = "";
      await signedIn(result);
    } catch (error) {
      status(error.message, true);
    }
  }

  async function refreshIdToken() {
    const result = await cognito("InitiateAuth", {
      AuthFlow: "REFRESH_TOKEN_AUTH",
      ClientId: config.clientId,
      AuthParameters: { REFRESH_TOKEN: session.refreshToken },
    });
    session.idToken = result.AuthenticationResult.IdToken;
  }

  // The Voice SDK token from this app, for the signed-in user (the identity is the username).
  async function voiceToken() {
    let response = await fetch("client/token", { method: "POST", headers: { Authorization: session.idToken } });
    if (response.status === 401 && session.refreshToken) {
      await refreshIdToken();
      response = await fetch("client/token", { method: "POST", headers: { Authorization: session.idToken } });
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const message = (data.error && data.error.message) || data.message || "status " + response.status;
      throw new Error("no phone token: " + message);
    }
    return data;
  }

  async function startDevice() {
    status("Getting a phone token…");
    let grant;
    try {
      grant = await voiceToken();
    } catch (error) {
      status(error.message, true);
      return;
    }
    $("identity").textContent = grant.identity;
    $("phone").hidden = false;
    if (!window.Twilio || !window.Twilio.Device) {
      status("The Voice SDK did not load", true);
      return;
    }
    device = new window.Twilio.Device(grant.token, { closeProtection: true, codecPreferences: ["opus", "pcmu"] });
    device.on("registering", () => status("Connecting…"));
    device.on("registered", () => status("Ready: calls to " + grant.identity + " ring here"));
    device.on("unregistered", () => status("Not receiving calls"));
    device.on("error", (error) => status("Phone error: " + (error.message || error.code), true));
    device.on("incoming", ringing);
    device.on("tokenWillExpire", async () => {
      try {
        device.updateToken((await voiceToken()).token);
      } catch (error) {
        status(error.message, true);
      }
    });
    try {
      await device.register();
    } catch (error) {
      status("Phone error: " + (error.message || error.code), true);
    }
  }

  function inCall(active) {
    $("call").disabled = active;
    $("hang-up").disabled = !active;
    $("mute").disabled = !active;
    if (!active) {
      $("mute").setAttribute("aria-pressed", "false");
      $("mute").textContent = "Mute";
    }
  }

  function follow(current) {
    call = current;
    inCall(true);
    current.on("accept", () => callState("in call"));
    current.on("ringing", () => callState("ringing"));
    current.on("reconnecting", () => callState("reconnecting"));
    current.on("reconnected", () => callState("in call"));
    const ended = (what) => () => {
      callState(what);
      call = null;
      inCall(false);
    };
    current.on("disconnect", ended("ended"));
    current.on("cancel", ended("missed"));
    current.on("reject", ended("rejected"));
    current.on("error", (error) => callState("error: " + (error.message || error.code)));
  }

  async function placeCall() {
    const to = $("to").value.trim();
    if (!to) {
      status("Enter a number or client:NAME", true);
      return;
    }
    if (!device) {
      status("The phone is not ready", true);
      return;
    }
    callState("calling " + to);
    try {
      follow(await device.connect({ params: { To: to } }));
    } catch (error) {
      callState("error: " + (error.message || error.code));
      inCall(false);
    }
  }

  function ringing(current) {
    incoming = current;
    $("incoming-from").textContent = "Incoming call from " + (current.parameters.From || "unknown");
    $("incoming").hidden = false;
    const gone = () => {
      $("incoming").hidden = true;
      incoming = null;
    };
    current.on("cancel", () => {
      gone();
      callState("missed");
    });
    current.on("disconnect", gone);
  }

  function answer(accepted) {
    if (!incoming) {
      return;
    }
    const current = incoming;
    $("incoming").hidden = true;
    incoming = null;
    if (accepted) {
      follow(current);
      current.accept();
    } else {
      current.reject();
      callState("rejected");
    }
  }

  function signOut() {
    if (device) {
      device.destroy();
      device = null;
    }
    Object.assign(session, { username: "", idToken: "", refreshToken: "", challenge: "" });
    $("phone").hidden = true;
    $("incoming").hidden = true;
    $("login").hidden = false;
    status("Signed out");
  }

  $("login").addEventListener("submit", signIn);
  $("new-password").addEventListener("submit", setPassword);
  $("call").addEventListener("click", placeCall);
  $("hang-up").addEventListener("click", () => call && call.disconnect());
  $("mute").addEventListener("click", () => {
    if (!call) {
      return;
    }
    const muted = !call.isMuted();
    call.mute(muted);
    $("mute").setAttribute("aria-pressed", String(muted));
    $("mute").textContent = muted ? "Unmute" : "Mute";
  });
  $("accept").addEventListener("click", () => answer(true));
  $("reject").addEventListener("click", () => answer(false));
  $("sign-out").addEventListener("click", signOut);
  $("pad").addEventListener("click", (event) => {
    const digit = event.target.dataset && event.target.dataset.digit;
    if (!digit) {
      return;
    }
    if (call) {
      call.sendDigits(digit);
    } else {
      $("to").value += digit;
    }
  });
})();
