// Pros pages: upload progress and search suggestions. Progressive enhancement only.

// Uploads: send the same form with XHR to show progress, then follow the answer.
for (const form of document.querySelectorAll("form[data-upload]")) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const bar = form.querySelector("progress");
    const status = form.querySelector(".upload-status");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable && bar) {
        bar.hidden = false;
        bar.value = Math.round((e.loaded / e.total) * 100);
      }
    });
    xhr.addEventListener("load", () => {
      if (bar) bar.value = 100;
      if (xhr.status < 400) {
        window.location.assign(xhr.responseURL);
      } else {
        document.open();
        document.write(xhr.responseText);
        document.close();
      }
    });
    xhr.addEventListener("error", () => {
      if (status) status.textContent = form.dataset.error || "Upload failed.";
      form.querySelector("button[type=submit]")?.removeAttribute("aria-busy");
    });
    xhr.send(new FormData(form));
  });
}

// Search-as-you-type suggestions into the input's datalist.
for (const input of document.querySelectorAll("input[data-suggest]")) {
  const list = document.getElementById(input.getAttribute("list"));
  let timer = 0;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const q = input.value.trim();
    if (!q || !list) return;
    timer = setTimeout(async () => {
      const response = await fetch(`/api/v1/search/suggest?q=${encodeURIComponent(q)}`);
      if (!response.ok) return;
      const { items } = await response.json();
      list.replaceChildren(
        ...items.map((item) => {
          const option = document.createElement("option");
          option.value = item.label;
          return option;
        }),
      );
    }, 150);
  });
}
