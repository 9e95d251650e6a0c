// Photo redaction page (issue 22 item 5): drag on the photo to fill the next empty
// rectangle of the form with the dragged area, in the photo's own pixels. The form works
// without this script (numeric fields); this only fills them in.
(function () {
  "use strict";
  var img = document.querySelector("img.redaction-photo");
  var form = document.querySelector("form[data-redaction-rows]");
  if (!img || !form) return;
  var rows = parseInt(form.getAttribute("data-redaction-rows"), 10);
  var frame = img.parentNode;
  frame.classList.add("redaction-frame");
  var box = null, start = null;

  function pixel(event) {
    var rect = img.getBoundingClientRect();
    var scale = img.naturalWidth / rect.width;
    var x = Math.round((event.clientX - rect.left) * scale);
    var y = Math.round((event.clientY - rect.top) * scale);
    return {
      x: Math.max(0, Math.min(img.naturalWidth, x)),
      y: Math.max(0, Math.min(img.naturalHeight, y)),
      scale: scale,
    };
  }

  function area(a, b) {
    return {
      x: Math.min(a.x, b.x), y: Math.min(a.y, b.y),
      width: Math.abs(a.x - b.x), height: Math.abs(a.y - b.y),
    };
  }

  function show(r, scale) {
    box.style.left = (r.x / scale + img.offsetLeft) + "px";
    box.style.top = (r.y / scale + img.offsetTop) + "px";
    box.style.width = (r.width / scale) + "px";
    box.style.height = (r.height / scale) + "px";
  }

  function field(name) { return form.querySelector('input[name="' + name + '"]'); }

  function emptyRow() {
    for (var i = 1; i <= rows; i++) {
      if (!field("x" + i).value && !field("y" + i).value &&
          !field("w" + i).value && !field("h" + i).value) return i;
    }
    return 0;
  }

  img.addEventListener("pointerdown", function (event) {
    event.preventDefault();
    start = pixel(event);
    box = document.createElement("div");
    box.className = "redaction-box";
    frame.appendChild(box);
    img.setPointerCapture(event.pointerId);
  });
  img.addEventListener("pointermove", function (event) {
    if (!start) return;
    var end = pixel(event);
    show(area(start, end), end.scale);
  });
  img.addEventListener("pointerup", function (event) {
    if (!start) return;
    var r = area(start, pixel(event));
    start = null;
    var row = emptyRow();
    if (r.width < 1 || r.height < 1 || !row) { frame.removeChild(box); return; }
    field("x" + row).value = r.x;
    field("y" + row).value = r.y;
    field("w" + row).value = r.width;
    field("h" + row).value = r.height;
  });
})();
