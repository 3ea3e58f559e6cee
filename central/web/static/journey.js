// Varta operator console: the journey map (Leaflet, vendored). The page gives the plan as
// JSON in #journey-map[data-plan]: the configured cameras (lat, lon, heading, label, seen)
// and the route (camera positions in time order). With a tile URL template in data-tiles
// the map shows the centre's own tile server; without one it is a plain plan: longitude
// across, latitude up, with grid lines, and no tiles at all.
(function () {
  "use strict";
  var box = document.getElementById("journey-map");
  if (!box || typeof L === "undefined") { return; }
  var plan = JSON.parse(box.dataset.plan || "{}");
  var cams = plan.cameras || [], route = plan.route || [];
  var tiles = box.dataset.tiles || "";
  var points = cams.map(function (c) { return [c.lat, c.lon]; }).concat(route);

  // On the plain plan a degree of longitude is drawn cos(latitude) as wide as one of
  // latitude, so distances look right near the cameras.
  var lat0 = points.length ? points.reduce(function (s, p) { return s + p[0]; }, 0) / points.length : 0;
  var k = Math.cos(lat0 * Math.PI / 180) || 1;
  function at(p) { return tiles ? L.latLng(p[0], p[1]) : L.latLng(p[0], p[1] * k); }

  var common = { attributionControl: false, zoomControl: false };
  var map = L.map(box, tiles ? common
    : L.extend({ crs: L.CRS.Simple, minZoom: -5, maxZoom: 24, zoomSnap: 0.25 }, common));
  L.control.zoom({ zoomInTitle: box.dataset.zoomIn, zoomOutTitle: box.dataset.zoomOut }).addTo(map);
  L.control.attribution({ prefix: "Leaflet" }).addTo(map);
  if (tiles) {
    L.tileLayer(tiles, { maxZoom: 19 }).addTo(map);
  }

  var bounds = points.length ? L.latLngBounds(points.map(at)) : L.latLngBounds([at([0, 0])]);
  if (!tiles) { grid(bounds.pad(2)); }

  function grid(b) {
    var span = Math.max(b.getNorth() - b.getSouth(), (b.getEast() - b.getWest()) / k, 1e-6);
    var step = Math.pow(10, Math.floor(Math.log10(span / 2)));
    var lat, lon;
    for (lat = Math.floor(b.getSouth() / step) * step; lat <= b.getNorth(); lat += step) {
      L.polyline([[lat, b.getWest()], [lat, b.getEast()]], { className: "grid", interactive: false }).addTo(map);
    }
    for (lon = Math.floor(b.getWest() / k / step) * step; lon * k <= b.getEast(); lon += step) {
      L.polyline([[b.getSouth(), lon * k], [b.getNorth(), lon * k]], { className: "grid", interactive: false }).addTo(map);
    }
  }

  if (route.length > 1) {
    L.polyline(route.map(at), { className: "journey-route", weight: 4 }).addTo(map);
  }
  cams.forEach(function (c) {
    var p = at([c.lat, c.lon]);
    if (c.heading !== null && c.heading !== undefined) {
      // a short stroke the way the camera looks (compass degrees, clockwise from north)
      var len = Math.max(bounds.getNorth() - bounds.getSouth(), bounds.getEast() - bounds.getWest(), 1e-4) / 7;
      var rad = c.heading * Math.PI / 180;
      var tip = L.latLng(p.lat + Math.cos(rad) * len, p.lng + Math.sin(rad) * len / (tiles ? k : 1));
      L.polyline([p, tip], { className: "cam-heading", interactive: false }).addTo(map);
    }
    // the label goes to the side the camera does not look to, so its heading stays visible
    var side = c.heading !== null && c.heading !== undefined && Math.sin(c.heading * Math.PI / 180) > 0.5 ? "left" : "right";
    L.circleMarker(p, { radius: c.seen ? 9 : 6, className: c.seen ? "cam-marker seen" : "cam-marker" })
      .bindTooltip(c.label, { permanent: true, direction: side, offset: [side === "left" ? -12 : 12, 0] })
      .addTo(map);
  });

  if (points.length > 1) { map.fitBounds(bounds.pad(0.15)); }
  else { map.setView(bounds.getCenter(), tiles ? 15 : 12); }
  box.dataset.markers = String(cams.length);
  box.dataset.routePoints = String(route.length > 1 ? route.length : 0);
  box.dataset.drawn = "true";
})();
