// Maps of the console (Leaflet, served locally). Everything a map shows is also on the
// page as text, so the maps are an enhancement, not the only way to the information.
(function () {
  function baseLayer(map, el) {
    var tiles = el.getAttribute('data-tiles');
    if (tiles) {
      L.tileLayer(tiles, { maxZoom: 19, attribution: '© OpenStreetMap contributors' }).addTo(map);
    }
    // ward outlines, from our own database: the map is readable without a tile server
    fetch('/console/map/areas.geojson').then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data) { L.geoJSON(data, { style: { color: '#4a4a4a', weight: 1, fill: false } }).addTo(map); }
      });
  }

  var pin = document.getElementById('pin-map');
  if (pin && window.L) {
    var lat = parseFloat(pin.dataset.lat), lon = parseFloat(pin.dataset.lon);
    var small = L.map(pin, { keyboard: true }).setView([lat, lon], 16);
    baseLayer(small, pin);
    L.marker([lat, lon], { alt: pin.getAttribute('aria-label') }).addTo(small);
  }

  var big = document.getElementById('queue-map');
  if (big && window.L) {
    var map = L.map(big, { keyboard: true }).setView([21.0285, 105.8542], 12);
    baseLayer(map, big);
    var layer = L.layerGroup().addTo(map);
    function load() {
      var b = map.getBounds();
      var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) {
        return Math.max(-180, Math.min(180, v)).toFixed(6);
      }).join(',');
      fetch('/console/map.geojson?bbox=' + bbox + '&zoom=' + map.getZoom())
        .then(function (r) { return r.json(); })
        .then(function (data) {
          layer.clearLayers();
          data.features.forEach(function (f) {
            var c = f.geometry.coordinates, p = f.properties;
            if (p.cluster) {
              var icon = L.divIcon({ className: 'map-cluster' + (p.overdue ? ' late' : ''), html: String(p.count), iconSize: [40, 40] });
              L.marker([c[1], c[0]], { icon: icon, alt: p.count + (p.overdue ? ' (' + p.overdue + ' late)' : '') })
                .on('click', function () { map.setView([c[1], c[0]], map.getZoom() + 2); })
                .addTo(layer);
            } else {
              var a = document.createElement('a');
              a.href = '/console/reports/' + p.id;
              a.textContent = p.code + (p.overdue ? ' — LATE' : '');
              L.marker([c[1], c[0]], { alt: p.code }).bindPopup(a).addTo(layer);
            }
          });
        });
    }
    map.on('moveend', load);
    load();
  }
})();
