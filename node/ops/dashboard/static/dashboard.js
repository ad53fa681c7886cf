// Retry and cancel buttons on the jobs page: the same storage.queue calls as the CLI.
"use strict";
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.retry, button.cancel");
  if (!button) return;
  const what = button.classList.contains("retry") ? "retry" : "cancel";
  const job = button.dataset.job;
  const message = document.getElementById("message");
  button.disabled = true;
  const response = await fetch(`/dashboard/api/jobs/${job}/${what}`, {
    method: "POST",
    headers: { "X-SharpRay-Action": "1" },
    credentials: "same-origin",
  });
  const body = await response.json();
  if (response.ok) {
    message.textContent = what === "retry" ? `job ${job} queued again` : `job ${job} cancelled`;
    const row = document.getElementById(`job-${job}`);
    const state = row.querySelector(".state");
    const next = what === "retry" ? "queued" : "cancelled";
    state.textContent = next;
    state.className = `state ${next}`;
    row.dataset.state = next;
    button.remove();
  } else {
    message.textContent = `job ${job}: ${body.detail}`;
    button.disabled = false;
  }
});
